// Appending a change, with what follows from it in the same transaction:
// the SVP shoot-down entries for the SVP clients with a port on the VNI.
import { randomBytes } from 'node:crypto';
import type { Change, ChangeActor } from '../model/changes.js';
import { type Shootdown, shootdownsFor } from '../model/shootdowns.js';
import type { Repo } from '../store/repo.js';
import type { ShootdownRow } from '../store/schema.js';

/** Appends `c` as made by `actor` (null: no token) with its shoot-downs; returns its version. */
export async function logChange(tx: Repo, c: Change, at: string, actor: ChangeActor | null): Promise<number> {
  const version = await tx.appendChange(c, at, actor);
  const wanted: { hosts: Set<string>; entries: Shootdown[] }[] = [];
  if ('port' in c) {
    const entries = shootdownsFor(c);
    if (entries.length === 0) return version;
    const clients = await tx.svpClients();
    // Only hosts that poll the log get entries (push-mode agents never remove them).
    if (clients.size === 0) return version;
    // Every host on the VNI now, plus the port's own host and, for a move, the
    // one it left (a deleted port is already gone from the first set).
    const hosts = new Set(await tx.hostsOnNetwork(c.port.networkId));
    hosts.add(c.port.hostId);
    if (c.kind === 'port.moved') hosts.add(c.from.hostId);
    wanted.push({ hosts: new Set([...hosts].filter((h) => clients.has(h))), entries });
  } else if (c.kind === 'host.updated' && c.host.underlayIp !== c.before.underlayIp) {
    const clients = await tx.svpClients();
    if (clients.size === 0) return version;
    // Every MAC behind this host now lives at another VTEP: VL2 for each, to
    // every host on its VNI (docs/protocol.md's table has no row for it; this is the move case).
    for (const p of await tx.portMappingsFor(c.host.hostId, [])) {
      if (p.vni === null || p.hostId !== c.host.hostId) continue;
      const hosts = (await tx.hostsOnNetwork(p.networkId)).filter((h) => clients.has(h));
      wanted.push({ hosts: new Set(hosts), entries: [{ kind: 'vl2', vni: p.vni, mac: p.mac }] });
    }
  }
  const rows: ShootdownRow[] = [];
  for (const w of wanted)
    for (const hostId of [...w.hosts].sort())
      for (const e of w.entries)
        rows.push({
          id: randomBytes(16).toString('hex'),
          hostId,
          version,
          idx: rows.length,
          kind: e.kind,
          vni: e.vni,
          mac: e.kind === 'vl2' ? e.mac : null,
          ip: e.kind === 'vl3' ? e.ip : null,
        });
  if (rows.length > 0) await tx.insertMany('shootdowns', rows);
  return version;
}
