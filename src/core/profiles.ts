// An instance's profile (model/profile.ts): the libvirt domain and the
// cloud-init seed its hypervisor runs it with, rendered from the source of
// truth: the instance, its ports and their networks, its site's VM settings
// and its tenant's SSH keys.
import { invalid, WeftError } from '../model/errors.js';
import { portIfname } from '../model/ifname.js';
import { instanceDir, type Profile, type ProfileInput, type ProfilePort } from '../model/profile.js';
import { ROUTED_GATEWAY4, ROUTED_GATEWAY6, renderProfile } from '../model/profile-render.js';
import type { NetworkKind } from '../model/types.js';
import type { Repo } from '../store/repo.js';
import type { InstanceRow } from '../store/schema.js';
import type { Ctx, Scope } from './context.js';
import * as ref from './resolve.js';
import { siteVm } from './views.js';

/** Where agents keep instances' files by default (`weft agent --vm-dir`): domain.xml, the seed, the console socket. */
export const VM_ROOT = '/var/lib/weft';

/** The gateway a routed network's guests route through (docs/routing.md): on-link, answered by the host. */
const ROUTED_GATEWAY = { gateway4: ROUTED_GATEWAY4, gateway6: ROUTED_GATEWAY6 } as const;

/** What renderProfile takes for one instance, read in the caller's transaction. */
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

/** GET /v1/instances/{id}/profile: tenant-scoped like the instance. */
export async function getProfile(ctx: Ctx, scope: Scope, instRef: string): Promise<Profile & { instanceId: string; hostId: string }> {
  return ctx.store.read(async (tx) => {
    const i = await ref.owned(tx, 'instances', instRef, scope);
    if (i.image === null)
      throw invalid('image', null, `instance ${i.name} has no image: set one (weft instance update ${i.name} --image NAME) before it can have a profile`);
    return { instanceId: i.id, hostId: i.hostId, ...renderProfile(await profileInput(tx, i)) };
  });
}
