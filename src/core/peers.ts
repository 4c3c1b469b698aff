// Use cases for BGP peers: upstream sessions of one host, or of every host
// in a rack (its ToR), with import policy, max-prefix and BFD.
import type { Static } from '@sinclair/typebox';
import { parseIp } from '../model/addr.js';
import { conflict, invalid } from '../model/errors.js';
import type * as I from '../model/inputs.js';
import { IMPORT_POLICIES, MAX_PREFIX_ACTIONS, type MaxPrefixAction, type Peer } from '../model/types.js';
import * as v from '../model/validate.js';
import { peerInfo } from '../store/records.js';
import type { Repo } from '../store/repo.js';
import type { PeerRow } from '../store/schema.js';
import { type Ctx, same, stamp } from './context.js';
import * as ref from './resolve.js';
import { logFabricChange } from './routers.js';
import { peerView } from './views.js';

export type PeerInput = Static<typeof I.PeerCreate>;

export const DEFAULT_MAX_PREFIX = 1000;
/** Reset the session (BIRD retries it): a leak is cut, and the session heals once the peer stops leaking. */
export const DEFAULT_MAX_PREFIX_ACTION: MaxPrefixAction = 'restart';

function checkNeighbor(value: string): string {
  const ip = parseIp('neighbor', value);
  const unspecified = ip.n === 0n;
  const multicast = ip.family === 4 ? ip.n >> 28n === 0xen : ip.n >> 120n === 0xffn;
  const broadcast = ip.family === 4 && ip.n === 0xffffffffn;
  if (unspecified || multicast || broadcast) throw invalid('neighbor', value, 'must be a unicast address');
  if (ip.family === 6 && ip.n >> 118n === 0x3fan)
    throw invalid('neighbor', value, 'must not be link-local: a session names no interface (use the global address)');
  return ip.text;
}

/**
 * Checks what one row allows together: both families on one session need an
 * IPv6 neighbour (IPv4 routes with IPv6 next hops, RFC 8950); IPv6 routes
 * over an IPv4 session would have no usable next hop.
 */
function checkCombination(row: Pick<PeerRow, 'neighbor' | 'multiprotocol'>): void {
  if (row.multiprotocol === 1 && !row.neighbor.includes(':'))
    throw invalid('multiprotocol', true, `needs an IPv6 neighbor (IPv4 routes over IPv6 next hops, RFC 8950); neighbor is ${row.neighbor}`);
}

/**
 * One session per neighbour on each host: a host's own peers and its rack's
 * together (BIRD would refuse the second, and the host's whole config with it).
 * A rack peer's ASN must also differ from every host's in the rack.
 */
async function checkUnique(tx: Repo, row: Pick<PeerRow, 'id' | 'hostId' | 'rackId' | 'neighbor' | 'remoteAsn'>): Promise<void> {
  const hosts = row.hostId !== null ? await tx.all('hosts', { id: [row.hostId] }) : await tx.all('hosts', { rackId: row.rackId as string });
  const racks = new Set([row.rackId, ...hosts.map((h) => h.rackId)].filter((r): r is string => r !== null));
  const ids = new Set(hosts.map((h) => h.id));
  const clash = (await tx.all('peers', { neighbor: row.neighbor })).find(
    (p) => p.id !== row.id && ((p.hostId !== null && ids.has(p.hostId)) || (p.rackId !== null && racks.has(p.rackId))),
  );
  if (clash) {
    const where =
      clash.hostId !== null ? `host ${(await tx.get('hosts', clash.hostId))?.name}` : `rack ${(await tx.get('racks', clash.rackId as string))?.name}`;
    throw conflict(`neighbor ${row.neighbor} already has a session on the same host(s): peer ${clash.id} of ${where}`, 'neighbor');
  }
  if (row.rackId !== null) {
    const same = hosts.find((h) => h.asn !== null && Number(h.asn) === row.remoteAsn);
    if (same) throw invalid('remoteAsn', row.remoteAsn, `must differ from the asn of host ${same.name} in the rack: weft's upstream sessions are eBGP`);
  }
}

/** A host's sessions are eBGP from its own ASN: it needs one, and the neighbour's must differ. */
async function checkHostAsn(tx: Repo, hostId: string, remoteAsn: number): Promise<void> {
  const h = await tx.get('hosts', hostId);
  if (!h) return;
  if (h.asn === null) throw invalid('host', h.name, "has no asn: set the host's asn before giving it BGP peers");
  if (Number(h.asn) === remoteAsn) throw invalid('remoteAsn', remoteAsn, `must differ from host ${h.name}'s own asn: weft's upstream sessions are eBGP`);
}

export async function createPeer(ctx: Ctx, input: PeerInput): Promise<Peer> {
  if ((input.host === undefined) === (input.rack === undefined))
    throw invalid('host', input.host ?? null, 'give exactly one of host (a session of that host) and rack (a session of every host in it)');
  const neighbor = checkNeighbor(input.neighbor);
  const remoteAsn = v.asn('remoteAsn', input.remoteAsn);
  const importPolicy = input.importPolicy === undefined ? 'default' : v.oneOf('importPolicy', input.importPolicy, IMPORT_POLICIES);
  const maxPrefix = input.maxPrefix === undefined ? DEFAULT_MAX_PREFIX : v.int('maxPrefix', input.maxPrefix, 1, 10_000_000);
  const maxPrefixAction =
    input.maxPrefixAction === undefined ? DEFAULT_MAX_PREFIX_ACTION : v.oneOf('maxPrefixAction', input.maxPrefixAction, MAX_PREFIX_ACTIONS);
  const bfd = input.bfd === undefined ? false : v.bool('bfd', input.bfd);
  const multiprotocol = input.multiprotocol === undefined ? false : v.bool('multiprotocol', input.multiprotocol);
  const description = input.description == null ? null : v.str('description', input.description, 200);
  return ctx.store.write(async (tx) => {
    const hostId = input.host === undefined ? null : (await ref.host(tx, input.host)).id;
    const rackId = input.rack === undefined ? null : (await ref.rack(tx, input.rack)).id;
    if (hostId !== null) await checkHostAsn(tx, hostId, remoteAsn);
    const row: PeerRow = {
      ...stamp(ctx),
      hostId,
      rackId,
      neighbor,
      remoteAsn,
      importPolicy,
      maxPrefix,
      maxPrefixAction,
      bfd: bfd ? 1 : 0,
      multiprotocol: multiprotocol ? 1 : 0,
      description,
    };
    checkCombination(row);
    await checkUnique(tx, row);
    await tx.insert('peers', row);
    await tx.appendChange({ kind: 'peer.created', peer: peerInfo(row) }, row.createdAt, ctx.actor);
    await logPeerFabric(tx, ctx, 'peer.created', row);
    return peerView(row);
  });
}

export type PeerPatch = Static<typeof I.PeerPatch>;

export async function updatePeer(ctx: Ctx, id: string, patch: PeerPatch): Promise<Peer> {
  return ctx.store.write(async (tx) => {
    const before = await ref.peer(tx, id);
    const after: PeerRow = { ...before };
    if (patch.neighbor !== undefined) after.neighbor = checkNeighbor(patch.neighbor);
    if (patch.remoteAsn !== undefined) after.remoteAsn = v.asn('remoteAsn', patch.remoteAsn);
    if (patch.importPolicy !== undefined) after.importPolicy = v.oneOf('importPolicy', patch.importPolicy, IMPORT_POLICIES);
    if (patch.maxPrefix !== undefined) after.maxPrefix = v.int('maxPrefix', patch.maxPrefix, 1, 10_000_000);
    if (patch.maxPrefixAction !== undefined) after.maxPrefixAction = v.oneOf('maxPrefixAction', patch.maxPrefixAction, MAX_PREFIX_ACTIONS);
    if (patch.bfd !== undefined) after.bfd = v.bool('bfd', patch.bfd) ? 1 : 0;
    if (patch.multiprotocol !== undefined) after.multiprotocol = v.bool('multiprotocol', patch.multiprotocol) ? 1 : 0;
    if (patch.description !== undefined) after.description = patch.description === null ? null : v.str('description', patch.description, 200);
    checkCombination(after);
    if (after.hostId !== null && after.remoteAsn !== before.remoteAsn) await checkHostAsn(tx, after.hostId, after.remoteAsn);
    if (after.neighbor !== before.neighbor || after.remoteAsn !== before.remoteAsn) await checkUnique(tx, after);
    const { id: _i, createdAt: _c, ...changed } = after;
    await tx.update('peers', before.id, changed);
    if (!same(peerInfo(after), peerInfo(before)))
      await tx.appendChange({ kind: 'peer.updated', peer: peerInfo(after) }, ctx.clock.now().toISOString(), ctx.actor);
    if (after.bfd !== before.bfd || after.remoteAsn !== before.remoteAsn) await logPeerFabric(tx, ctx, 'peer.updated', after, true);
    return peerView(after);
  });
}

export async function deletePeer(ctx: Ctx, id: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const p = await ref.peer(tx, id);
    await tx.remove('peers', { id: p.id });
    await tx.appendChange({ kind: 'peer.deleted', peer: peerInfo(p) }, ctx.clock.now().toISOString(), ctx.actor);
    await logPeerFabric(tx, ctx, 'peer.deleted', p);
  });
}

/** A host's peers say whether its ToR's session to it has BFD (model/fabric.ts): its rack's ToRs' configs follow. */
async function logPeerFabric(tx: Repo, ctx: Ctx, kind: string, p: PeerRow, changed = false): Promise<void> {
  if (!p.bfd && !changed) return;
  const rack = p.rackId !== null ? await tx.get('racks', p.rackId) : null;
  const host = p.hostId !== null ? await tx.get('hosts', p.hostId) : null;
  const siteId = rack?.siteId ?? host?.siteId;
  if (siteId === undefined) return;
  const tors = (await tx.all('routers', { siteId, role: 'tor', rackId: rack?.id ?? host?.rackId ?? null })).filter(
    (r) => Number(r.asn) === Number(p.remoteAsn),
  );
  await logFabricChange(tx, ctx, { kind, id: p.id }, tors);
}
