// A host's desired state read from the store in one consistent snapshot:
// what the push stream sends an agent that cannot resume from deltas.
import { notFound } from '../model/errors.js';
import { hostInfo, instanceInfo, networkInfo, peerInfo, vipInfo } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { DesiredState } from './protocol.js';

/** `instances`: with the host's instances and their profiles' inputs (an agent that manages VMs). */
export async function desiredState(store: Store, hostId: string, o: { instances?: boolean } = {}): Promise<{ version: number; state: DesiredState }> {
  return store.snapshot(async (tx) => {
    const version = await tx.headVersion();
    const host = await tx.get('hosts', hostId);
    if (!host) throw notFound('host', hostId);
    const local = await tx.portMappingsFor(hostId, []);
    const vnis = [...new Set(local.map((p) => p.vni).filter((v): v is number => v !== null))].sort((a, b) => a - b);
    const ports = await tx.portMappingsFor(hostId, vnis);
    const netIds = [...new Set(ports.map((p) => p.networkId))];
    const networks = (await tx.all('networks', { id: netIds })).map(networkInfo);
    const links = await tx.all('vipBackends', { portId: local.map((p) => p.portId) });
    const vips = [];
    for (const id of [...new Set(links.map((l) => l.vipId))].sort()) {
      const v = await tx.get('vips', id);
      if (v) vips.push(await vipInfo(tx, v));
    }
    const peers = [...(await tx.all('peers', { hostId })), ...(host.rackId ? await tx.all('peers', { rackId: host.rackId }) : [])].map(peerInfo);
    const state: DesiredState = { host: hostInfo(host), ports, networks, vnis, vips, peers };
    if (o.instances) {
      state.instances = [];
      for (const i of (await tx.all('instances', { hostId })).sort((a, b) => a.id.localeCompare(b.id))) state.instances.push(await instanceInfo(tx, i));
    }
    return { version, state };
  });
}
