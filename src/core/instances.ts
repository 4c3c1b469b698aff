// Use cases for instances and their ports: placement, MAC and IP allocation,
// IP changes, moves (migration) and deletes, each writing the change-log
// entries that the mapping service and the agents follow.
import type { Static } from '@sinclair/typebox';
import { type Cidr, cidrContains, type Family, formatIp, formatMac, parseCidr, parseIpOf, parseMac, usableRange } from '../model/addr.js';
import type { ChangeActor } from '../model/changes.js';
import { capacity, conflict, invalid, WeftError } from '../model/errors.js';
import type * as I from '../model/inputs.js';
import { type Candidate, fits, place, SIZES } from '../model/placement.js';
import { checkImage } from '../model/profile.js';
import { checkTenantAddress } from '../model/tenant-addr.js';
import { INSTANCE_STATES, type Instance, type Port, type Resources } from '../model/types.js';
import * as v from '../model/validate.js';
import { portMapping } from '../store/records.js';
import type { Repo } from '../store/repo.js';
import type { HostRow, InstanceRow, NetworkRow, PortRow, TenantRow } from '../store/schema.js';
import { logChange } from './changelog.js';
import { type Ctx, type Scope, stamp } from './context.js';
import { pools } from './infra.js';
import { logInstance } from './profiles.js';
import { beginQuota } from './quotas.js';
import * as ref from './resolve.js';
import { instanceView, portView, siteView } from './views.js';
import { touchVips, touchVipsOf } from './vips.js';

export type PortSpec = Static<typeof I.PortSpec>;

export type InstanceInput = Static<typeof I.InstanceCreate>;

export type InstanceWithPorts = Instance & { ports: Port[] };

const MAX_PORTS = 16;

function resources(input: InstanceInput): Resources {
  let base: Resources = SIZES.small as Resources;
  if (input.size !== undefined) {
    const s = Object.hasOwn(SIZES, input.size) ? SIZES[input.size] : undefined;
    if (!s) throw invalid('size', input.size, `must be one of ${Object.keys(SIZES).join(', ')}`);
    base = s;
  }
  return {
    cpus: input.cpus === undefined ? base.cpus : v.int('cpus', input.cpus, 1, 1024),
    memoryMb: input.memoryMb === undefined ? base.memoryMb : v.int('memoryMb', input.memoryMb, 64, 16 * 1024 * 1024),
    diskGb: input.diskGb === undefined ? base.diskGb : v.int('diskGb', input.diskGb, 0, 1024 * 1024),
  };
}

async function candidates(tx: Repo, siteId: string): Promise<{ hosts: HostRow[]; cands: Candidate[] }> {
  const hosts = await tx.all('hosts', { siteId });
  const cands = hosts.map((h) => ({
    hostId: h.id,
    name: h.name,
    state: h.state as Candidate['state'],
    capacity: { cpus: h.cpus, memoryMb: h.memoryMb, diskGb: h.diskGb },
    used: { cpus: Number(h.usedCpus), memoryMb: Number(h.usedMemoryMb), diskGb: Number(h.usedDiskGb) },
  }));
  return { hosts, cands };
}

function noRoom(siteName: string, want: Resources, cands: Candidate[]): WeftError {
  const active = cands.filter((c) => c.state === 'active').length;
  return capacity(
    `no active host in site ${siteName} has room for ${want.cpus} cpus, ${want.memoryMb} MB memory, ${want.diskGb} GB disk ` +
      `(${cands.length} hosts, ${active} active)`,
  );
}

/** Picks the host: the pinned one if given (checked), else placement. */
async function chooseHost(ctx: Ctx, tx: Repo, siteId: string, siteName: string, want: Resources, pin: string | undefined, exclude?: string) {
  const { hosts, cands } = await candidates(tx, siteId);
  if (pin !== undefined) {
    const h = await ref.host(tx, pin);
    if (h.siteId !== siteId) throw invalid('host', pin, `must be a host of site ${siteName}`);
    if (h.id === exclude) throw invalid('host', pin, 'is the host the instance is already on');
    if (h.state !== 'active') throw conflict(`host ${h.name} is ${h.state}; only active hosts take instances`, 'host');
    const c = cands.find((x) => x.hostId === h.id) as Candidate;
    if (!fits(c, want, ctx.settings.placement))
      throw capacity(`host ${h.name} has no room for ${want.cpus} cpus, ${want.memoryMb} MB memory, ${want.diskGb} GB disk`, 'host');
    return h;
  }
  const pick = place(
    cands.filter((c) => c.hostId !== exclude),
    want,
    ctx.settings.placement,
  );
  if (!pick) throw noRoom(siteName, want, cands);
  return hosts.find((h) => h.id === pick.hostId) as HostRow;
}

/** Allocates `family` addresses for a port; explicit values are checked and claimed. */
async function pickIp(
  tx: Repo,
  net: NetworkRow,
  host: HostRow,
  family: Family,
  value: string | null | undefined,
  owner: string,
  field: string,
): Promise<string | null> {
  if (value === null) return null;
  let ranges: Cidr[];
  let pool: string;
  let rangeNote: string;
  if (net.kind === 'overlay') {
    ranges = (JSON.parse(net.subnets) as string[]).map((s) => parseCidr('subnets', s)).filter((c) => c.family === family);
    pool = pools.net(net.id, family);
    rangeNote = `the network's IPv${family} subnets`;
  } else if (family === 4) {
    const site = siteView((await tx.get('sites', net.siteId as string))!);
    ranges = site.ipv4Pools.map((p) => parseCidr('ipv4Pools', p));
    pool = pools.sitePublic4(site.id);
    rangeNote = `site ${site.name}'s ipv4Pools`;
  } else {
    // Routed IPv6 comes from the host's /64 and stays with the instance when it moves.
    const site = siteView((await tx.get('sites', net.siteId as string))!);
    pool = pools.routed6;
    if (value !== undefined) {
      ranges = site.ipv6Block ? [parseCidr('ipv6Block', site.ipv6Block)] : [];
      rangeNote = `site ${site.name}'s ipv6Block`;
    } else {
      ranges = host.ipv6Prefix ? [parseCidr('ipv6Prefix', host.ipv6Prefix)] : [];
      rangeNote = `host ${host.name}'s /64`;
    }
  }
  if (value !== undefined) {
    const n = parseIpOf(field, value, family);
    checkTenantAddress(field, family, n, value);
    const c = ranges.find((r) => cidrContains(r, family, n));
    const usable = c ? usableRange(c) : null;
    if (!c || !usable || n < usable.lo || n > usable.hi)
      throw invalid(field, value, `must be a usable address in ${rangeNote} (${ranges.map((r) => r.text).join(', ') || 'none'})`);
    await tx.claim(pool, n, owner, `${field} ${formatIp(family, n)}`, field);
    return formatIp(family, n);
  }
  if (ranges.length === 0) return null;
  for (const c of ranges) {
    const { lo, hi } = usableRange(c);
    try {
      return formatIp(family, await tx.allocate(pool, lo, hi, owner, `${rangeNote} ${c.text}`));
    } catch (e) {
      if ((e as WeftError).code !== 'E_CAPACITY') throw e;
    }
  }
  throw capacity(`${field}: no free address left in ${rangeNote} (${ranges.map((r) => r.text).join(', ')})`, field);
}

async function addPort(ctx: Ctx, tx: Repo, inst: InstanceRow, host: HostRow, spec: PortSpec, field: string, scope: Scope): Promise<PortRow> {
  let net: NetworkRow;
  try {
    net = await ref.owned(tx, 'networks', spec.network, scope, inst.tenantId);
  } catch (e) {
    if ((e as WeftError).code === 'E_NOT_FOUND') throw invalid(`${field}.network`, spec.network, "must be a network of the instance's tenant");
    throw e;
  }
  if (net.kind === 'routed' && net.siteId !== inst.siteId)
    throw invalid(`${field}.network`, spec.network, "is a routed network of another site than the instance's");
  const { id, createdAt } = stamp(ctx);
  let mac: string;
  if (spec.mac !== undefined) {
    const m = parseMac(`${field}.mac`, spec.mac);
    // Tenants may pick only locally administered MACs; globally assigned ones
    // (a router's VRRP MAC, a vendor's range) are for operators importing a cloud.
    if (scope.tenantId !== null && ((m.n >> 40n) & 2n) === 0n)
      throw invalid(`${field}.mac`, spec.mac, 'must be locally administered (second bit of the first octet set, e.g. 02:...)');
    await tx.claim(pools.mac, m.n, id, `${field}.mac ${m.text}`, `${field}.mac`);
    mac = m.text;
  } else {
    const base = BigInt(ctx.settings.macPrefix) << 24n;
    mac = formatMac(await tx.allocate(pools.mac, base, base + 0xffffffn, id, 'MAC range'));
  }
  const ipv4 = await pickIp(tx, net, host, 4, spec.ipv4, id, `${field}.ipv4`);
  const ipv6 = await pickIp(tx, net, host, 6, spec.ipv6, id, `${field}.ipv6`);
  const row: PortRow = { id, createdAt, instanceId: inst.id, networkId: net.id, tenantId: inst.tenantId, mac, ipv4, ipv6 };
  await tx.insert('ports', row);
  await logChange(tx, { kind: 'port.created', port: portMapping(row, net, host) }, createdAt, ctx.actor);
  return row;
}

/** `relog`: log the instance's record too (false when the instance itself goes). */
async function removePort(tx: Repo, port: PortRow, at: string, actor: ChangeActor | null, relog = true): Promise<void> {
  const net = (await tx.get('networks', port.networkId)) as NetworkRow;
  const inst = (await tx.get('instances', port.instanceId)) as InstanceRow;
  const host = (await tx.get('hosts', inst.hostId)) as HostRow;
  const vipLinks = await tx.all('vipBackends', { portId: port.id });
  await tx.remove('vipBackends', { portId: port.id });
  await tx.remove('allocations', { owner: port.id });
  await tx.remove('ports', { id: port.id });
  await logChange(tx, { kind: 'port.deleted', port: portMapping(port, net, host) }, at, actor);
  // The VIPs it backed lose a backend: their announcements may change.
  await touchVips(
    tx,
    vipLinks.map((l) => l.vipId),
    at,
    actor,
  );
  if (relog) await logInstance(tx, inst, at, actor);
}

export async function createInstance(ctx: Ctx, scope: Scope, input: InstanceInput): Promise<InstanceWithPorts> {
  v.name('name', input.name);
  const want = resources(input);
  const state = input.state === undefined ? 'running' : v.oneOf('state', input.state, INSTANCE_STATES);
  const image = input.image == null ? null : checkImage('image', input.image);
  if (input.host !== undefined && scope.tenantId !== null)
    throw new WeftError('E_FORBIDDEN', 'only operators may pin an instance to a host; omit host', 'host');
  const specs = input.ports ?? [];
  if (specs.length > MAX_PORTS) throw invalid('ports', `${specs.length} ports`, `at most ${MAX_PORTS} per instance`);
  const tenantRef = scope.tenantId ?? input.tenant;
  if (tenantRef === undefined) throw invalid('tenant', undefined, 'required');
  return ctx.store.write(async (tx) => {
    const t = await ref.tenant(tx, tenantRef, scope);
    const s = await ref.site(tx, input.site);
    if (await tx.findOne('instances', { tenantId: t.id, name: input.name }))
      throw conflict(`instance ${JSON.stringify(input.name)} already exists in tenant ${t.name}`, 'name');
    const quota = await beginQuota(ctx, tx, scope, t, { instances: 1, ports: specs.length, publicIpv4: 0 });
    const host = await chooseHost(ctx, tx, s.id, s.name, want, input.host);
    const row: InstanceRow = { ...stamp(ctx), tenantId: t.id, name: input.name, siteId: s.id, hostId: host.id, ...want, state, image };
    await tx.insert('instances', row);
    await tx.addHostUsage(host.id, want, 1);
    const ports: PortRow[] = [];
    for (const [i, spec] of specs.entries()) ports.push(await addPort(ctx, tx, row, host, spec, `ports[${i}]`, scope));
    await quota();
    await logInstance(tx, row, row.createdAt, ctx.actor);
    return { ...instanceView(row), ports: ports.map(portView) };
  });
}

export async function getInstance(ctx: Ctx, scope: Scope, instRef: string): Promise<InstanceWithPorts> {
  return ctx.store.read(async (tx) => {
    const i = await ref.owned(tx, 'instances', instRef, scope);
    const ports = await tx.all('ports', { instanceId: i.id });
    return { ...instanceView(i), ports: ports.sort((a, b) => a.id.localeCompare(b.id)).map(portView) };
  });
}

export async function updateInstance(ctx: Ctx, scope: Scope, instRef: string, patch: Static<typeof I.InstancePatch>): Promise<Instance> {
  if (patch.name !== undefined) v.name('name', patch.name);
  if (patch.state !== undefined) v.oneOf('state', patch.state, INSTANCE_STATES);
  const image = patch.image == null ? patch.image : checkImage('image', patch.image);
  return ctx.store.write(async (tx) => {
    const i = await ref.owned(tx, 'instances', instRef, scope);
    if (patch.name !== undefined && patch.name !== i.name && (await tx.findOne('instances', { tenantId: i.tenantId, name: patch.name })))
      throw conflict(`instance ${JSON.stringify(patch.name)} already exists in this tenant`, 'name');
    const after = {
      ...i,
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.state !== undefined ? { state: patch.state } : {}),
      ...(image !== undefined ? { image } : {}),
    };
    await tx.update('instances', i.id, { name: after.name, state: after.state, image: after.image });
    if (after.name !== i.name || after.state !== i.state || after.image !== i.image) await logInstance(tx, after, ctx.clock.now().toISOString(), ctx.actor);
    return instanceView(after);
  });
}

/** Deletes an instance and its ports; returns what it was, for the event log. */
export async function deleteInstance(ctx: Ctx, scope: Scope, instRef: string): Promise<{ id: string; name: string; tenantId: string; hostId: string }> {
  return ctx.store.write(async (tx) => {
    const i = await ref.owned(tx, 'instances', instRef, scope);
    const at = ctx.clock.now().toISOString();
    for (const p of await tx.all('ports', { instanceId: i.id })) await removePort(tx, p, at, ctx.actor, false);
    await tx.remove('instances', { id: i.id });
    await tx.appendChange(
      { kind: 'instance.deleted', instance: { instanceId: i.id, tenantId: i.tenantId, name: i.name, hostId: i.hostId, state: i.state, profile: null } },
      at,
      ctx.actor,
    );
    await tx.addHostUsage(i.hostId, { cpus: i.cpus, memoryMb: i.memoryMb, diskGb: i.diskGb }, -1);
    return { id: i.id, name: i.name, tenantId: i.tenantId, hostId: i.hostId };
  });
}

/**
 * Moves an instance to another host of its site (the target, or one chosen
 * by placement). Its ports keep their MACs and addresses; the log gets a
 * port.moved per port, then vip.updated for VIPs they back.
 */
export async function migrateInstance(ctx: Ctx, scope: Scope, instRef: string, target?: string): Promise<InstanceWithPorts> {
  return ctx.store.write(async (tx) => {
    const i = await ref.owned(tx, 'instances', instRef, scope);
    const s = (await tx.get('sites', i.siteId))!;
    const from = (await tx.get('hosts', i.hostId)) as HostRow;
    const want = { cpus: i.cpus, memoryMb: i.memoryMb, diskGb: i.diskGb };
    const to = await chooseHost(ctx, tx, s.id, s.name, want, target, from.id);
    await tx.update('instances', i.id, { hostId: to.id });
    await tx.addHostUsage(from.id, want, -1);
    await tx.addHostUsage(to.id, want, 1);
    const at = ctx.clock.now().toISOString();
    const ports = (await tx.all('ports', { instanceId: i.id })).sort((a, b) => a.id.localeCompare(b.id));
    for (const p of ports) {
      const net = (await tx.get('networks', p.networkId)) as NetworkRow;
      await logChange(tx, { kind: 'port.moved', port: portMapping(p, net, to), from: { hostId: from.id, underlayIp: from.underlayIp } }, at, ctx.actor);
    }
    await touchVipsOf(
      tx,
      ports.map((p) => p.id),
      at,
      ctx.actor,
    );
    // After the ports: the destination's agent plugs a VM's taps as its domain starts.
    await logInstance(tx, { ...i, hostId: to.id }, at, ctx.actor, from.id);
    return { ...instanceView({ ...i, hostId: to.id }), ports: ports.map(portView) };
  });
}

export async function createPort(ctx: Ctx, scope: Scope, input: Static<typeof I.PortCreate>): Promise<Port> {
  return ctx.store.write(async (tx) => {
    const i = await ref.owned(tx, 'instances', input.instance, scope);
    if ((await tx.count('ports', { instanceId: i.id })) >= MAX_PORTS)
      throw capacity(`instance ${i.name} already has ${MAX_PORTS} ports, the most allowed`, 'instance');
    const quota = await beginQuota(ctx, tx, scope, (await tx.get('tenants', i.tenantId)) as TenantRow, { ports: 1, publicIpv4: 0 });
    const host = (await tx.get('hosts', i.hostId)) as HostRow;
    const port = await addPort(ctx, tx, i, host, input, 'port', scope);
    await quota();
    await logInstance(tx, i, port.createdAt, ctx.actor);
    return portView(port);
  });
}

/** Changes a port's addresses (an explicit address, or null to drop it); the old ones are freed. */
export async function updatePort(ctx: Ctx, scope: Scope, portRef: string, patch: Static<typeof I.PortPatch>): Promise<Port> {
  return ctx.store.write(async (tx) => {
    const before = await ref.owned(tx, 'ports', portRef, scope);
    const net = (await tx.get('networks', before.networkId)) as NetworkRow;
    const inst = (await tx.get('instances', before.instanceId)) as InstanceRow;
    const host = (await tx.get('hosts', inst.hostId)) as HostRow;
    // A routed port that had no IPv4 address and gets one takes a public address.
    const quota = await beginQuota(ctx, tx, scope, (await tx.get('tenants', before.tenantId)) as TenantRow, { publicIpv4: 0 });
    const after: PortRow = { ...before };
    for (const family of [4, 6] as const) {
      const k = family === 4 ? 'ipv4' : 'ipv6';
      const want = patch[k];
      if (want === undefined) continue;
      const old = before[k];
      if (old !== null) {
        const pool = net.kind === 'overlay' ? pools.net(net.id, family) : family === 4 ? pools.sitePublic4(net.siteId as string) : pools.routed6;
        await tx.release(pool, parseIpOf(k, old, family));
      }
      after[k] = want === null ? null : await pickIp(tx, net, host, family, want, before.id, k);
    }
    if (after.ipv4 === before.ipv4 && after.ipv6 === before.ipv6) return portView(before);
    await tx.update('ports', before.id, { ipv4: after.ipv4, ipv6: after.ipv6 });
    await quota();
    const at = ctx.clock.now().toISOString();
    await logChange(tx, { kind: 'port.updated', port: portMapping(after, net, host), before: portMapping(before, net, host) }, at, ctx.actor);
    await touchVipsOf(tx, [before.id], at, ctx.actor);
    await logInstance(tx, inst, at, ctx.actor);
    return portView(after);
  });
}

export async function deletePort(ctx: Ctx, scope: Scope, portRef: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const p = await ref.owned(tx, 'ports', portRef, scope);
    await removePort(tx, p, ctx.clock.now().toISOString(), ctx.actor);
  });
}
