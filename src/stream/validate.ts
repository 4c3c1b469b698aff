// Checks each push-stream message at decode, on both sides: a message of a
// known type with a missing field, a field of the wrong type or a bad value
// is an E_INVALID_ARG naming the field and the value. Plain typeof checks,
// no allocation per port: snapshots and deltas carry up to 100k of them.

import { invalid } from '../model/errors.js';
import { checkMigrationUri } from '../model/profile.js';
import { type AgentMessage, CONSOLE_CHUNK, FINGERPRINT, MAX_REPORTED_UNGUARDED, type ServerMessage } from './protocol.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function obj(v: unknown, field: string): Obj {
  if (!isObj(v)) throw invalid(field, v, 'must be an object');
  return v;
}

function str(o: Obj, key: string, at: string): void {
  if (typeof o[key] !== 'string') throw invalid(`${at}.${key}`, o[key], 'must be a string');
}

function strOrNull(o: Obj, key: string, at: string): void {
  const v = o[key];
  if (v !== null && typeof v !== 'string') throw invalid(`${at}.${key}`, v, 'must be a string or null');
}

const isUint = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function uint(o: Obj, key: string, at: string): void {
  if (!isUint(o[key])) throw invalid(`${at}.${key}`, o[key], 'must be an integer >= 0');
}

function uintOrNull(o: Obj, key: string, at: string): void {
  if (o[key] !== null && !isUint(o[key])) throw invalid(`${at}.${key}`, o[key], 'must be an integer >= 0 or null');
}

/** An optional change fingerprint (changeFingerprint): absent, or 16 lowercase hex digits. */
function fingerprint(o: Obj, at: string): void {
  const v = o.fingerprint;
  if (v !== undefined && (typeof v !== 'string' || !FINGERPRINT.test(v))) throw invalid(`${at}.fingerprint`, v, 'must be 16 lowercase hex digits, or absent');
}

function arr(o: Obj, key: string, at: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw invalid(`${at}.${key}`, v, 'must be an array');
  return v;
}

function uints(o: Obj, key: string, at: string): void {
  const a = arr(o, key, at);
  for (let i = 0; i < a.length; i++) if (!isUint(a[i])) throw invalid(`${at}.${key}[${i}]`, a[i], 'must be an integer >= 0');
}

/** The fields of a PortMapping the agent acts on (ids, kind, VNI, MAC, addresses, host). */
function port(v: unknown, at: string): void {
  const p = obj(v, at);
  str(p, 'portId', at);
  str(p, 'networkId', at);
  if (p.networkKind !== 'overlay' && p.networkKind !== 'routed') throw invalid(`${at}.networkKind`, p.networkKind, 'must be "overlay" or "routed"');
  uintOrNull(p, 'vni', at);
  str(p, 'mac', at);
  strOrNull(p, 'ipv4', at);
  strOrNull(p, 'ipv6', at);
  str(p, 'hostId', at);
  str(p, 'underlayIp', at);
}

/** Whether `port` would pass, without building a path: the hot path of 100k-port snapshots. */
function portOk(v: unknown): boolean {
  if (!isObj(v)) return false;
  return (
    typeof v.portId === 'string' &&
    typeof v.networkId === 'string' &&
    (v.networkKind === 'overlay' || v.networkKind === 'routed') &&
    (v.vni === null || isUint(v.vni)) &&
    typeof v.mac === 'string' &&
    (v.ipv4 === null || typeof v.ipv4 === 'string') &&
    (v.ipv6 === null || typeof v.ipv6 === 'string') &&
    typeof v.hostId === 'string' &&
    typeof v.underlayIp === 'string'
  );
}

function ports(o: Obj, key: string, at: string): void {
  const a = arr(o, key, at);
  // The path is built only for the port that fails.
  for (let i = 0; i < a.length; i++) if (!portOk(a[i])) port(a[i], `${at}.${key}[${i}]`);
}

function host(v: unknown, at: string): void {
  const h = obj(v, at);
  str(h, 'hostId', at);
  strOrNull(h, 'rackId', at);
  str(h, 'underlayIp', at);
}

/** An array of objects, each with a string `idKey`. */
function objects(o: Obj, key: string, at: string, idKey: string): void {
  const a = arr(o, key, at);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (!isObj(x) || typeof x[idKey] !== 'string') str(obj(x, `${at}.${key}[${i}]`), idKey, `${at}.${key}[${i}]`);
  }
}

/** A console session id: what the server made (16 hex digits), so a hostile peer cannot make the other side hold big keys. */
function consoleSession(m: Obj, t: string): void {
  if (typeof m.session !== 'string' || !/^[0-9a-f]{16}$/.test(m.session)) throw invalid(`${t}.session`, m.session, 'must be 16 hex digits');
}

/** console.data (base64 of at most CONSOLE_CHUNK bytes) or console.close (a reason of at most 500 characters). */
function consoleMessage(m: Obj, t: string): void {
  consoleSession(m, t);
  if (t === 'console.data') {
    if (typeof m.data !== 'string' || m.data.length > Math.ceil(CONSOLE_CHUNK / 3) * 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(m.data))
      throw invalid(`${t}.data`, typeof m.data === 'string' ? `${m.data.length} characters` : m.data, `must be base64 of at most ${CONSOLE_CHUNK} bytes`);
  } else if (typeof m.reason !== 'string' || m.reason.length > 500) throw invalid(`${t}.reason`, m.reason, 'must be a string of at most 500 characters');
}

/** An InstanceInfo: what the agent keys and decides on; the profile's own fields are checked as it is rendered (model/profile-render.ts). */
function instance(v: unknown, at: string): void {
  const i = obj(v, at);
  for (const k of ['instanceId', 'tenantId', 'name', 'hostId']) str(i, k, at);
  if (i.state !== 'running' && i.state !== 'stopped') throw invalid(`${at}.state`, i.state, 'must be "running" or "stopped"');
  if (i.profile !== null) obj(i.profile, `${at}.profile`);
  // Absent from an older server's records: read as null.
  if (i.migrationUri !== undefined && i.migrationUri !== null) checkMigrationUri(i.migrationUri as string);
}

/** A logged change and the record its kind carries. */
function change(v: unknown, i: number): void {
  // The common case, a port created or deleted, builds no path.
  if (isObj(v) && (v.kind === 'port.created' || v.kind === 'port.deleted') && isUint(v.version) && portOk(v.port)) return;
  const at = `delta.changes[${i}]`;
  const c = obj(v, at);
  uint(c, 'version', at);
  const kind = c.kind;
  if (typeof kind !== 'string') throw invalid(`${at}.kind`, kind, 'must be a string');
  switch (kind) {
    case 'port.created':
    case 'port.deleted':
      if (!portOk(c.port)) port(c.port, `${at}.port`);
      break;
    case 'port.moved':
      port(c.port, `${at}.port`);
      str(obj(c.from, `${at}.from`), 'hostId', `${at}.from`);
      break;
    case 'port.updated':
      port(c.port, `${at}.port`);
      port(c.before, `${at}.before`);
      break;
    case 'host.created':
    case 'host.deleted':
      host(c.host, `${at}.host`);
      break;
    case 'host.updated':
      host(c.host, `${at}.host`);
      host(c.before, `${at}.before`);
      break;
    case 'network.created':
    case 'network.updated':
    case 'network.deleted':
      str(obj(c.network, `${at}.network`), 'networkId', `${at}.network`);
      break;
    case 'vip.created':
    case 'vip.updated':
    case 'vip.deleted': {
      const vip = obj(c.vip, `${at}.vip`);
      str(vip, 'vipId', `${at}.vip`);
      objects(vip, 'backends', `${at}.vip`, 'hostId');
      break;
    }
    case 'peer.created':
    case 'peer.updated':
    case 'peer.deleted':
      str(obj(c.peer, `${at}.peer`), 'peerId', `${at}.peer`);
      break;
    case 'instance.updated':
    case 'instance.deleted':
      instance(c.instance, `${at}.instance`);
      if (c.kind === 'instance.updated' && c.fromHostId !== null && typeof c.fromHostId !== 'string')
        throw invalid(`${at}.fromHostId`, c.fromHostId, 'must be a host id or null');
      break;
    default:
      throw invalid(`${at}.kind`, kind, 'must be a known change kind');
  }
}

/** An agent's guards report (AgentGuards): a count and at most MAX_REPORTED_UNGUARDED ports. */
function guards(v: unknown, at: string): void {
  const g = obj(v, at);
  uint(g, 'unguarded', at);
  const ports = arr(g, 'ports', at);
  if (ports.length > MAX_REPORTED_UNGUARDED) throw invalid(`${at}.ports`, `${ports.length} ports`, `must list at most ${MAX_REPORTED_UNGUARDED}`);
  for (let i = 0; i < ports.length; i++) {
    const pat = `${at}.ports[${i}]`;
    const p = obj(ports[i], pat);
    str(p, 'portId', pat);
    str(p, 'ifname', pat);
    if (p.kind !== 'refused' && p.kind !== 'failed') throw invalid(`${pat}.kind`, p.kind, 'must be "refused" or "failed"');
    str(p, 'reason', pat);
  }
}

/** The message's `t`, or a throw when it is not an object with a string `t`. */
function typeOf(raw: unknown): { m: Obj; t: string } {
  const m = obj(raw, 'message');
  if (typeof m.t !== 'string') throw invalid('message.t', m.t, 'must be a string');
  return { m, t: m.t };
}

/**
 * A message from the server, checked: null for a type this agent does not
 * know (ignored, as the protocol allows). Throws a WeftError E_INVALID_ARG
 * naming the field and its value when a known type is malformed.
 */
export function decodeServerMessage(raw: unknown): ServerMessage | null {
  const { m, t } = typeOf(raw);
  switch (t) {
    case 'welcome':
      uint(m, 'v', t);
      str(m, 'hostId', t);
      if (m.mode !== 'deltas' && m.mode !== 'snapshot') throw invalid(`${t}.mode`, m.mode, 'must be "deltas" or "snapshot"');
      uint(m, 'head', t);
      if (m.reason !== undefined) str(m, 'reason', t);
      break;
    case 'snapshot.begin':
      uint(m, 'version', t);
      break;
    case 'snapshot.ports':
      ports(m, 'ports', t);
      break;
    case 'snapshot.end': {
      uint(m, 'version', t);
      const state = obj(m.state, `${t}.state`);
      const at = `${t}.state`;
      host(state.host, `${at}.host`);
      objects(state, 'networks', at, 'networkId');
      uints(state, 'vnis', at);
      objects(state, 'vips', at, 'vipId');
      objects(state, 'peers', at, 'peerId');
      // Only to agents that manage VMs (hello features "vm").
      if (state.instances !== undefined) {
        const list = arr(state, 'instances', at);
        for (let i = 0; i < list.length; i++) instance(list[i], `${at}.instances[${i}]`);
      }
      fingerprint(m, t);
      break;
    }
    case 'delta': {
      uint(m, 'version', t);
      const changes = arr(m, 'changes', t);
      for (let i = 0; i < changes.length; i++) change(changes[i], i);
      uints(m, 'vnis', t);
      fingerprint(m, t);
      break;
    }
    case 'ping':
    case 'pong':
      break;
    case 'error':
      str(m, 'code', t);
      str(m, 'message', t);
      break;
    case 'console.open':
      consoleSession(m, t);
      str(m, 'instanceId', t);
      break;
    case 'console.data':
    case 'console.close':
      consoleMessage(m, t);
      break;
    default:
      return null;
  }
  return m as unknown as ServerMessage;
}

/**
 * A message from an agent, checked: null for a type this server does not
 * know (ignored). A hello of another stream version is passed on unchecked
 * beyond `v`, for the server to refuse by name. Throws a WeftError
 * E_INVALID_ARG naming the field and its value when a known type is
 * malformed. A routing report's contents are sanitized later, not here; a
 * guards report's shape is checked here, its lengths bounded later.
 */
export function decodeAgentMessage(raw: unknown, streamVersion: number): AgentMessage | null {
  const { m, t } = typeOf(raw);
  switch (t) {
    case 'hello':
      uint(m, 'v', t);
      if (m.v !== streamVersion) break;
      str(m, 'host', t);
      str(m, 'token', t);
      uint(m, 'version', t);
      uints(m, 'vnis', t);
      fingerprint(m, t);
      if (m.features !== undefined) {
        const f = arr(m, 'features', t);
        if (f.length > 16 || f.some((x) => typeof x !== 'string' || x.length > 32))
          throw invalid(`${t}.features`, m.features, 'must be a list of at most 16 short strings');
      }
      break;
    case 'ack':
      uint(m, 'version', t);
      break;
    case 'routing':
      obj(m.routing, `${t}.routing`);
      break;
    case 'guards':
      guards(m.guards, `${t}.guards`);
      break;
    case 'console.data':
    case 'console.close':
      consoleMessage(m, t);
      break;
    case 'vms':
      obj(m.vms, `${t}.vms`);
      break;
    case 'ping':
    case 'pong':
      break;
    default:
      return null;
  }
  return m as unknown as AgentMessage;
}
