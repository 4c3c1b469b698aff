// The self-contained records the change log, the mapping index and the push
// stream carry (PortMapping, HostInfo...), built from rows in this one place.
import type { HostInfo, InstanceInfo, NetworkInfo, PeerInfo, PortMapping, RouterInfo, TokenInfo, VipInfo } from '../model/changes.js';
import { WeftError } from '../model/errors.js';
import { portIfname } from '../model/ifname.js';
import { instanceDir, migrationUriOf, type ProfileInput, type ProfilePort, VM_DEFAULTS, VM_ROOT, type VmSettings } from '../model/profile.js';
import { ROUTED_GATEWAY4, ROUTED_GATEWAY6 } from '../model/profile-render.js';
import type { NetworkKind, Role } from '../model/types.js';
import type { Repo } from './repo.js';
import type { HostRow, InstanceRow, NetworkRow, PeerRow, PortRow, RouterRow, SiteRow, TokenRow, VipRow } from './schema.js';

/**
 * A port's mapping from its row, its network's and its host's. Every field
 * is a column as it is: the store's port join selects by this function
 * (PORT_MAPPING_SELECT), so it must stay a plain copy of columns.
 */
export const portMapping = (p: PortRow, n: NetworkRow, h: HostRow): PortMapping => ({
  portId: p.id,
  instanceId: p.instanceId,
  tenantId: p.tenantId,
  networkId: n.id,
  networkKind: n.kind as NetworkKind,
  vni: n.vni,
  mac: p.mac,
  ipv4: p.ipv4,
  ipv6: p.ipv6,
  hostId: h.id,
  underlayIp: h.underlayIp,
});

/** A stand-in row whose every column reads as its qualified name (`p.id`). */
const columnsOf = (table: string) => new Proxy({}, { get: (_, column) => `${table}.${String(column)}` }) as never;

/**
 * The select list of a join of `ports as p`, `networks as n` and `hosts as h`
 * that yields PortMappings: what portMapping() reads, aliased to the field it
 * fills, in its order (so the JSON the change log stores is the same either way).
 */
export const PORT_MAPPING_SELECT: readonly string[] = Object.entries(portMapping(columnsOf('p'), columnsOf('n'), columnsOf('h'))).map(
  ([field, column]) => `${column} as ${field}`,
);

export const hostInfo = (r: HostRow): HostInfo => ({
  hostId: r.id,
  name: r.name,
  siteId: r.siteId,
  rackId: r.rackId,
  underlayIp: r.underlayIp,
  asn: r.asn === null ? null : Number(r.asn),
  state: r.state,
  ipv6Prefix: r.ipv6Prefix,
  svpClient: Number(r.svpClient) === 1,
  svpClientAddresses: JSON.parse(r.svpClientAddresses) as string[],
});

export const networkInfo = (r: NetworkRow): NetworkInfo => ({
  networkId: r.id,
  tenantId: r.tenantId,
  kind: r.kind as NetworkKind,
  vni: r.vni,
  mtu: r.mtu,
  subnets: JSON.parse(r.subnets) as string[],
  arpRate: r.arpRate,
  ndRate: r.ndRate,
});

export const peerInfo = (r: PeerRow): PeerInfo => ({
  peerId: r.id,
  hostId: r.hostId,
  rackId: r.rackId,
  neighbor: r.neighbor,
  remoteAsn: Number(r.remoteAsn),
  importPolicy: r.importPolicy,
  maxPrefix: r.maxPrefix,
  maxPrefixAction: r.maxPrefixAction,
  bfd: r.bfd === 1,
  multiprotocol: r.multiprotocol === 1,
});

export const routerInfo = (r: RouterRow): RouterInfo => ({
  routerId: r.id,
  name: r.name,
  role: r.role,
  siteId: r.siteId,
  rackId: r.rackId,
  asn: Number(r.asn),
  platform: r.platform,
});

/** What the log says of a deleted token: who it was, never its secret hash. */
export const tokenInfo = (r: TokenRow): TokenInfo => ({
  tokenId: r.id,
  name: r.name,
  role: r.role as Role,
  tenantId: r.tenantId,
  hostId: r.hostId,
});

/** The self-contained record of a VIP for the change log: backends with their hosts. */
export async function vipInfo(tx: Repo, vip: VipRow): Promise<VipInfo> {
  const links = await tx.all('vipBackends', { vipId: vip.id });
  const ports = await tx.all('ports', { id: links.map((l) => l.portId) });
  const insts = await tx.all('instances', { id: [...new Set(ports.map((p) => p.instanceId))] });
  const hostOf = new Map(insts.map((i) => [i.id, i.hostId]));
  return {
    vipId: vip.id,
    tenantId: vip.tenantId,
    address: vip.address,
    backends: ports
      .map((p) => ({ portId: p.id, hostId: hostOf.get(p.instanceId) as string, ipv4: p.ipv4, ipv6: p.ipv6 }))
      .sort((a, b) => a.portId.localeCompare(b.portId)),
    healthCheck: JSON.parse(vip.healthCheck),
  };
}

/** A site's VM settings: what it set over the defaults. */
export const siteVm = (r: SiteRow): VmSettings => (r.vm === null ? { ...VM_DEFAULTS } : { ...VM_DEFAULTS, ...(JSON.parse(r.vm) as Partial<VmSettings>) });

/** The gateway a routed network's guests route through (docs/routing.md): on-link, answered by the host. */
const ROUTED_GATEWAY = { gateway4: ROUTED_GATEWAY4, gateway6: ROUTED_GATEWAY6 } as const;

/**
 * What an instance's profile is rendered from (model/profile-render.ts),
 * read in the caller's transaction: the instance, its ports (in creation
 * order) with their networks, its site's VM settings, its tenant's keys.
 * `root` places the console socket and the seed (the agent renders with
 * its own --vm-dir).
 */
export async function profileInput(tx: Repo, i: InstanceRow, root = VM_ROOT): Promise<ProfileInput> {
  const site = await tx.get('sites', i.siteId);
  if (!site) throw new WeftError('E_INTERNAL', `instance ${i.id}: its site ${i.siteId} is missing`);
  const ports = (await tx.all('ports', { instanceId: i.id })).sort((a, b) => a.id.localeCompare(b.id));
  const nets = new Map((await tx.all('networks', { id: [...new Set(ports.map((p) => p.networkId))] })).map((n) => [n.id, n]));
  const keys = (await tx.all('sshKeys', { tenantId: i.tenantId })).sort((a, b) => a.id.localeCompare(b.id));
  return {
    instance: { id: i.id, name: i.name, tenantId: i.tenantId, cpus: i.cpus, memoryMb: i.memoryMb, diskGb: i.diskGb, image: i.image },
    vm: siteVm(site),
    ports: ports.map((p): ProfilePort => {
      const n = nets.get(p.networkId);
      if (!n) throw new WeftError('E_INTERNAL', `port ${p.id}: its network ${p.networkId} is missing`);
      const kind = n.kind as NetworkKind;
      return {
        portId: p.id,
        mac: p.mac,
        ipv4: p.ipv4,
        ipv6: p.ipv6,
        ifname: portIfname(p.id),
        network: {
          id: n.id,
          name: n.name,
          kind,
          mtu: n.mtu,
          subnets: JSON.parse(n.subnets) as string[],
          ...(kind === 'routed' ? ROUTED_GATEWAY : { gateway4: null, gateway6: null }),
        },
      };
    }),
    sshKeys: keys.map((k) => k.publicKey),
    consoleSocket: `${instanceDir(root, i.id)}/console.sock`,
  };
}

/** An instance's record for its host's agent: its profile's inputs, or null without an image. */
export async function instanceInfo(tx: Repo, i: InstanceRow): Promise<InstanceInfo> {
  const profile = i.image === null ? null : await profileInput(tx, i);
  const host = profile?.vm.sharedStorage ? await tx.get('hosts', i.hostId) : undefined;
  return {
    instanceId: i.id,
    tenantId: i.tenantId,
    name: i.name,
    hostId: i.hostId,
    state: i.state,
    profile,
    migrationUri: profile && host ? migrationUriOf(profile.vm, host) : null,
  };
}
