import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { LoggedChange } from '../model/changes.js';
import { WeftError } from '../model/errors.js';
import * as S from '../model/schema.js';
import { changeFingerprint, FINGERPRINT, MAX_REPORTED_UNGUARDED } from './protocol.js';
import { decodeAgentMessage, decodeServerMessage } from './validate.js';

const port = {
  portId: 'p1',
  instanceId: 'i1',
  tenantId: 't',
  networkId: 'n',
  networkKind: 'overlay',
  vni: 7,
  mac: '02:00:00:00:00:01',
  ipv4: '10.0.0.1',
  ipv6: null,
  hostId: 'h2',
  underlayIp: '192.0.2.2',
};
const host = { hostId: 'h1', name: 'h1', siteId: 's', rackId: null, underlayIp: '192.0.2.1', asn: null, state: 'active', ipv6Prefix: null };
const inst = { instanceId: 'i1', tenantId: 't1', name: 'web1', hostId: 'h1', state: 'running', profile: { instance: {} } };
const good = [
  { t: 'welcome', v: 1, hostId: 'h1', mode: 'deltas', head: 3 },
  { t: 'welcome', v: 1, hostId: 'h1', mode: 'snapshot', head: 3, reason: 'diverged' },
  { t: 'snapshot.end', version: 3, state: { host, networks: [], vnis: [], vips: [], peers: [] }, fingerprint: '0123456789abcdef' },
  { t: 'delta', version: 5, changes: [], vnis: [], fingerprint: 'fedcba9876543210' },
  { t: 'snapshot.begin', version: 3 },
  { t: 'snapshot.ports', ports: [port, { ...port, portId: 'p2', vni: null, networkKind: 'routed' }] },
  { t: 'snapshot.end', version: 3, state: { host, networks: [{ networkId: 'n' }], vnis: [7], vips: [], peers: [] } },
  {
    t: 'delta',
    version: 5,
    changes: [
      { kind: 'port.created', port, version: 4, at: 'x' },
      { kind: 'port.moved', port, from: { hostId: 'h3', underlayIp: '192.0.2.3' }, version: 5, at: 'x' },
      { kind: 'host.updated', host, before: host, version: 5, at: 'x' },
      { kind: 'vip.created', vip: { vipId: 'v', backends: [{ portId: 'p1', hostId: 'h1' }] }, version: 5, at: 'x' },
      { kind: 'instance.updated', instance: inst, fromHostId: 'h2', version: 5, at: 'x' },
      { kind: 'instance.deleted', instance: { ...inst, profile: null }, version: 5, at: 'x' },
    ],
    vnis: [7],
  },
  { t: 'snapshot.end', version: 3, state: { host, networks: [], vnis: [], vips: [], peers: [], instances: [inst] } },
  { t: 'ping' },
  { t: 'error', code: 'E_FORBIDDEN', message: 'no' },
  { t: 'console.open', session: '0123456789abcdef', instanceId: 'i1' },
  { t: 'console.data', session: '0123456789abcdef', data: 'aGVsbG8=' },
  { t: 'console.close', session: '0123456789abcdef', reason: 'token revoked' },
];

test('well-formed server messages pass unchanged; unknown types are null (ignored)', () => {
  for (const m of good) assert.equal(decodeServerMessage(m), m);
  assert.equal(decodeServerMessage({ t: 'from.a.newer.server', x: 1 }), null);
});

/** Each malformed message and the field its error must name. */
const badServer: [unknown, string, string][] = [
  [5, 'message', '5'],
  [null, 'message', 'null'],
  [{ version: 1 }, 'message.t', '(missing)'],
  [{ t: 'welcome', v: 1, hostId: 'h1', mode: 'all', head: 0 }, 'welcome.mode', '"all"'],
  [{ t: 'snapshot.begin', version: -1 }, 'snapshot.begin.version', '-1'],
  [{ t: 'snapshot.ports', ports: {} }, 'snapshot.ports.ports', '{}'],
  [{ t: 'snapshot.ports', ports: [port, { ...port, mac: 7 }] }, 'snapshot.ports.ports[1].mac', '7'],
  [{ t: 'snapshot.ports', ports: [port, null] }, 'snapshot.ports.ports[1]', 'null'],
  [{ t: 'snapshot.end', version: 1, state: { host, networks: [], vnis: ['7'], vips: [], peers: [] } }, 'snapshot.end.state.vnis[0]', '"7"'],
  [{ t: 'snapshot.end', version: 1 }, 'snapshot.end.state', '(missing)'],
  [{ t: 'delta', version: '5', changes: [], vnis: [] }, 'delta.version', '"5"'],
  [{ t: 'delta', version: 5, changes: [{ kind: 'port.created', port: { ...port, vni: 1.5 }, version: 5 }], vnis: [] }, 'delta.changes[0].port.vni', '1.5'],
  [{ t: 'delta', version: 5, changes: [{ kind: 'port.exploded', version: 5 }], vnis: [] }, 'delta.changes[0].kind', '"port.exploded"'],
  [{ t: 'delta', version: 5, changes: [{ kind: 'port.moved', port, version: 5 }], vnis: [] }, 'delta.changes[0].from', '(missing)'],
  [{ t: 'delta', version: 5, changes: [] }, 'delta.vnis', '(missing)'],
  [{ t: 'error', code: 3, message: 'x' }, 'error.code', '3'],
  [{ t: 'welcome', v: 1, hostId: 'h1', mode: 'snapshot', head: 0, reason: 7 }, 'welcome.reason', '7'],
  [
    { t: 'snapshot.end', version: 1, state: { host, networks: [], vnis: [], vips: [], peers: [] }, fingerprint: 'ABCDEF0123456789' },
    'snapshot.end.fingerprint',
    '"ABCDEF0123456789"',
  ],
  [{ t: 'delta', version: 5, changes: [], vnis: [], fingerprint: '0123' }, 'delta.fingerprint', '"0123"'],
  [
    { t: 'delta', version: 5, changes: [{ kind: 'instance.updated', instance: { ...inst, state: 'paused' }, fromHostId: null, version: 5 }], vnis: [] },
    'delta.changes[0].instance.state',
    '"paused"',
  ],
  [
    { t: 'delta', version: 5, changes: [{ kind: 'instance.updated', instance: { ...inst, profile: 'x' }, fromHostId: null, version: 5 }], vnis: [] },
    'delta.changes[0].instance.profile',
    '"x"',
  ],
  [
    { t: 'delta', version: 5, changes: [{ kind: 'instance.updated', instance: inst, fromHostId: 5, version: 5 }], vnis: [] },
    'delta.changes[0].fromHostId',
    '5',
  ],
  [
    { t: 'snapshot.end', version: 1, state: { host, networks: [], vnis: [], vips: [], peers: [], instances: [{ ...inst, hostId: 1 }] } },
    'snapshot.end.state.instances[0].hostId',
    '1',
  ],
];

test('a malformed server message is an E_INVALID_ARG naming the field and the value', () => {
  for (const [m, field, shown] of badServer) {
    assert.throws(
      () => decodeServerMessage(m),
      (e: WeftError) => e instanceof WeftError && e.code === 'E_INVALID_ARG' && e.field === field && e.message.startsWith(`invalid ${field} ${shown}: `),
      `${JSON.stringify(m)} should name ${field}`,
    );
  }
});

test('agent messages: checked by type; a hello of another version is left for the server to refuse', () => {
  const hello = { t: 'hello', v: 1, host: 'h1', token: 'tok', version: 0, vnis: [7] };
  assert.throws(() => decodeAgentMessage({ ...hello, features: 'vm' }, 1), /hello\.features/);
  assert.throws(() => decodeAgentMessage({ ...hello, features: ['x'.repeat(40)] }, 1), /hello\.features/);
  assert.ok(decodeAgentMessage({ ...hello, features: ['vm', 'from-a-newer-agent'] }, 1), 'names a server does not know are fine');
  const unguarded = { portId: 'port-1', ifname: 'wp0123456789ab', kind: 'refused', reason: 'invalid port.ipv4 "224.0.0.1": must be a unicast address' };
  const guards = { t: 'guards', guards: { unguarded: 1, ports: [unguarded] } };
  for (const m of [
    hello,
    { ...hello, version: 9, fingerprint: '0123456789abcdef' },
    { t: 'ack', version: 4 },
    { t: 'routing', routing: { birdUp: 'whatever' } },
    guards,
    { t: 'guards', guards: { unguarded: 0, ports: [] } },
    { t: 'pong' },
  ])
    assert.equal(decodeAgentMessage(m, 1), m);
  assert.equal(decodeAgentMessage({ t: 'hello', v: 2, hosts: ['h1'] }, 1)?.t, 'hello');
  assert.equal(decodeAgentMessage({ t: 'telemetry' }, 1), null);
  const bad: [unknown, string][] = [
    [[], 'message'],
    [{ t: 'hello', v: 1, host: 'h1', version: 0, vnis: [] }, 'hello.token'],
    [{ ...hello, vnis: [7, -1] }, 'hello.vnis[1]'],
    [{ ...hello, v: '1' }, 'hello.v'],
    [{ ...hello, version: 9, fingerprint: 12 }, 'hello.fingerprint'],
    [{ ...hello, version: 9, fingerprint: '0123456789abcdef0' }, 'hello.fingerprint'],
    [{ t: 'ack', version: 'seven' }, 'ack.version'],
    [{ t: 'routing', routing: 'up' }, 'routing.routing'],
    [{ t: 'guards' }, 'guards.guards'],
    [{ t: 'guards', guards: { unguarded: -1, ports: [] } }, 'guards.guards.unguarded'],
    [{ t: 'guards', guards: { unguarded: 1 } }, 'guards.guards.ports'],
    [{ t: 'guards', guards: { unguarded: 1, ports: ['wp0123456789ab'] } }, 'guards.guards.ports[0]'],
    [{ t: 'guards', guards: { unguarded: 1, ports: [{ ...unguarded, portId: 7 }] } }, 'guards.guards.ports[0].portId'],
    [{ t: 'guards', guards: { unguarded: 1, ports: [{ ...unguarded, ifname: null }] } }, 'guards.guards.ports[0].ifname'],
    [{ t: 'guards', guards: { unguarded: 2, ports: [unguarded, { ...unguarded, kind: 'broken' }] } }, 'guards.guards.ports[1].kind'],
    [{ t: 'guards', guards: { unguarded: 1, ports: [{ ...unguarded, reason: undefined }] } }, 'guards.guards.ports[0].reason'],
    [{ t: 'guards', guards: { unguarded: 51, ports: Array.from({ length: MAX_REPORTED_UNGUARDED + 1 }, () => unguarded) } }, 'guards.guards.ports'],
  ];
  for (const [m, field] of bad)
    assert.throws(
      () => decodeAgentMessage(m, 1),
      (e: WeftError) => e instanceof WeftError && e.code === 'E_INVALID_ARG' && e.field === field,
      `${JSON.stringify(m)} should name ${field}`,
    );
});

test("a change's fingerprint: 16 hex digits of its version, kind, entity and time, the same on every replica", () => {
  const p = { ...port, networkKind: 'overlay' as const };
  const c: LoggedChange = { kind: 'port.created', port: p, version: 4, at: '2026-12-07T10:00:00.000Z' };
  const f = changeFingerprint(c);
  assert.match(f, FINGERPRINT);
  assert.equal(changeFingerprint({ ...c }), f, 'from the change alone: a replica reading the same row computes the same');
  // A restored log that wrote another change at the same version: any of these differs.
  const others: LoggedChange[] = [
    { ...c, version: 5 },
    { ...c, kind: 'port.deleted' },
    { ...c, port: { ...p, portId: 'p9' } },
    { ...c, at: '2026-12-07T10:00:00.001Z' },
  ];
  for (const other of others) assert.notEqual(changeFingerprint(other), f, JSON.stringify(other));
  // What the agent does not compare: the port's other fields are not part of it.
  assert.equal(changeFingerprint({ ...c, port: { ...p, mac: '02:00:00:00:00:09' } }), f);
});

// The checks are hand-written (TypeBox's compiler would cost the agent some
// 11 MB of its 100 MB), so they are held to the one definition of each record
// in model/schema.ts: a record as the schema makes it passes, so a field the
// schema drops or retypes cannot stay required here.
describe('the checks follow the records defined in model/schema.ts', () => {
  const records: { name: string; schema: TObject; message: (r: unknown) => unknown }[] = [
    { name: 'PortMapping', schema: S.PortMapping, message: (port) => ({ t: 'snapshot.ports', ports: [port] }) },
    {
      name: 'HostInfo',
      schema: S.HostInfo,
      message: (host) => ({ t: 'snapshot.end', version: 1, state: { host, networks: [], vnis: [], vips: [], peers: [] } }),
    },
    {
      name: 'NetworkInfo',
      schema: S.NetworkInfo,
      message: (network) => ({ t: 'delta', version: 1, vnis: [], changes: [{ kind: 'network.created', network, version: 1 }] }),
    },
    { name: 'VipInfo', schema: S.VipInfo, message: (vip) => ({ t: 'delta', version: 1, vnis: [], changes: [{ kind: 'vip.created', vip, version: 1 }] }) },
    { name: 'PeerInfo', schema: S.PeerInfo, message: (peer) => ({ t: 'delta', version: 1, vnis: [], changes: [{ kind: 'peer.created', peer, version: 1 }] }) },
  ];
  for (const { name, schema, message } of records) {
    test(`${name}: a record the schema allows passes the checks`, () => {
      const sample = Value.Create(schema) as Record<string, unknown>;
      assert.ok(Value.Check(schema, sample));
      assert.ok(decodeServerMessage(message(sample)), `${name} as the schema makes it`);
    });
  }
});
