// Appending a change, with what follows from it in the same transaction:
// the SVP shoot-down entries for every host with a port on the VNI.
import { randomBytes } from 'node:crypto';
import type { Change } from '../model/changes.js';
import { shootdownsFor } from '../model/shootdowns.js';
import type { Repo } from '../store/repo.js';

export async function logChange(tx: Repo, c: Change, at: string): Promise<number> {
  const version = await tx.appendChange(c, at);
  const entries = shootdownsFor(c);
  if (entries.length === 0 || !('port' in c)) return version;
  // Every host on the VNI now, plus the port's own host and, for a move, the
  // one it left (a deleted port is already gone from the first set).
  const hosts = new Set(await tx.hostsOnNetwork(c.port.networkId));
  hosts.add(c.port.hostId);
  if (c.kind === 'port.moved') hosts.add(c.from.hostId);
  let idx = 0;
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
  return version;
}
