// Appending a change, with what follows from it in the same transaction:
// the SVP shoot-down entries for every host with a port on the VNI.
import { randomBytes } from 'node:crypto';
import type { Change } from '../model/changes.js';
import { type Shootdown, shootdownsFor } from '../model/shootdowns.js';
import type { Repo } from '../store/repo.js';

export async function logChange(tx: Repo, c: Change, at: string): Promise<number> {
  const version = await tx.appendChange(c, at);
  if ('port' in c) {
    // Every host on the VNI now, plus the port's own host and, for a move, the
    // one it left (a deleted port is already gone from the first set).
    const hosts = new Set(await tx.hostsOnNetwork(c.port.networkId));
    hosts.add(c.port.hostId);
    if (c.kind === 'port.moved') hosts.add(c.from.hostId);
    await record(tx, version, hosts, shootdownsFor(c));
  } else if (c.kind === 'host.updated' && c.host.underlayIp !== c.before.underlayIp) {
    // Every MAC behind this host now lives at another VTEP: VL2 for each, to
    // every host on its VNI (svp-v1.md has no row for it; this is the move case).
    for (const p of await tx.portMappingsFor(c.host.hostId, [])) {
      if (p.vni === null || p.hostId !== c.host.hostId) continue;
      await record(tx, version, new Set(await tx.hostsOnNetwork(p.networkId)), [{ kind: 'vl2', vni: p.vni, mac: p.mac }]);
    }
  }
  return version;
}

async function record(tx: Repo, version: number, hosts: Set<string>, entries: Shootdown[]): Promise<void> {
  if (entries.length === 0) return;
  let idx = await tx.count('shootdowns', { version });
  for (const hostId of [...hosts].sort()) {
    for (const e of entries) {
      await tx.insert('shootdowns', {
        id: randomBytes(16).toString('hex'),
        hostId,
        version,
        idx: idx++,
        kind: e.kind,
        vni: e.vni,
        mac: e.kind === 'vl2' ? e.mac : null,
        ip: e.kind === 'vl3' ? e.ip : null,
      });
    }
  }
}
