// Reconcile: desired vs current kernel state -> the plan that makes them
// equal, touching only what differs (pure). Also the model of what a plan
// does to the state, so the agent can track the kernel without re-reading it.
import { fdbKey, type KernelState, neighKey, type Op, type Plan, splitKey } from '../dataplane/dataplane.js';
import type { Desired } from './desired.js';

/**
 * The steps that turn `current` into `desired.state`. Objects not in
 * `desired` are removed; objects equal in both are left alone, so running
 * the plan on an already converged host is empty. Remote entries of lazy VNIs
 * belong to the miss handler and are neither added nor removed here.
 */
export function plan(desired: Desired, current: KernelState): Plan {
  const want = desired.state;
  const add: Op[] = [];
  const guards: Op[] = [];
  const plugs: Op[] = [];
  const sets: Op[] = [];
  const dels: Op[] = [];
  const tail: Op[] = [];
  const announce: Op[] = [];
  const waiting: string[] = [];
  /** VNIs whose devices are (re)created: nothing on them survives. */
  const fresh = new Set<number>();

  for (const [vni, d] of want.vnis) {
    const c = current.vnis.get(vni);
    if (!c || c.local !== d.local || c.lazy !== d.lazy) {
      if (c) add.push({ op: 'vni.del', vni });
      add.push({ op: 'vni.add', vni: d });
      fresh.add(vni);
    } else if (c.mtu !== d.mtu) add.push({ op: 'vni.mtu', vni, mtu: d.mtu });
  }
  for (const vni of current.vnis.keys()) if (!want.vnis.has(vni)) tail.push({ op: 'vni.del', vni });
  const gone = (vni: number) => fresh.has(vni) || !want.vnis.has(vni);
  const lazy = (vni: number) => want.vnis.get(vni)?.lazy === true;

  for (const [ifname, hash] of want.guards) {
    const port = desired.guardPorts.get(ifname);
    if (port && current.guards.get(ifname) !== hash) guards.push({ op: 'guard.set', port, hash });
  }
  for (const ifname of current.guards.keys()) if (!want.guards.has(ifname)) tail.push({ op: 'guard.del', ifname });

  const plugged = new Set<string>();
  for (const [ifname, d] of want.plugs) {
    if (!current.links.has(ifname)) {
      waiting.push(ifname);
      continue;
    }
    plugged.add(ifname);
    const c = current.plugs.get(ifname);
    if (c && !gone(c.vni) && c.vni === d.vni && c.mtu === d.mtu && c.mac === d.mac) continue;
    plugs.push({ op: 'port.plug', plug: d });
    if (!c || c.vni !== d.vni || fresh.has(d.vni)) announce.push({ op: 'announce', ifname, vni: d.vni, mac: d.mac, ips: desired.ips.get(ifname) ?? [] });
  }
  for (const [ifname, c] of current.plugs) if (!want.plugs.has(ifname) && !gone(c.vni)) tail.push({ op: 'port.unplug', plug: c });

  for (const [key, dst] of want.fdb) {
    const [vni, mac] = splitKey(key);
    if (dst.startsWith('@') && !plugged.has(dst.slice(1))) continue;
    const was = gone(vni) ? undefined : current.fdb.get(key);
    if (was !== dst) sets.push(was === undefined ? { op: 'fdb.set', vni, mac, dst } : { op: 'fdb.set', vni, mac, dst, was });
  }
  for (const [key, was] of current.fdb) {
    const [vni, mac] = splitKey(key);
    if (gone(vni) || want.fdb.has(key) || (lazy(vni) && !was.startsWith('@'))) continue;
    dels.push({ op: 'fdb.del', vni, mac, was });
  }
  for (const [key, mac] of want.neigh) {
    const [vni, ip] = splitKey(key);
    if ((gone(vni) ? undefined : current.neigh.get(key)) !== mac) sets.push({ op: 'neigh.set', vni, ip, mac });
  }
  for (const key of current.neigh.keys()) {
    const [vni, ip] = splitKey(key);
    if (!gone(vni) && !want.neigh.has(key) && !lazy(vni)) dels.push({ op: 'neigh.del', vni, ip });
  }
  return { ops: [...add, ...guards, ...plugs, ...sets, ...dels, ...tail, ...announce], waiting };
}

/** What a successful step leaves in the kernel (the model the fake and the agent keep). */
export function applyToState(s: KernelState, op: Op): void {
  switch (op.op) {
    case 'vni.add':
      s.vnis.set(op.vni.vni, { ...op.vni });
      break;
    case 'vni.mtu': {
      const v = s.vnis.get(op.vni);
      if (v) v.mtu = op.mtu;
      break;
    }
    case 'vni.del':
      s.vnis.delete(op.vni);
      dropVni(s, op.vni);
      break;
    case 'guard.set':
      s.guards.set(op.port.ifname, op.hash);
      break;
    case 'guard.del':
      s.guards.delete(op.ifname);
      break;
    case 'port.plug': {
      const old = s.plugs.get(op.plug.ifname);
      if (old && old.vni !== op.plug.vni) s.fdb.delete(fdbKey(old.vni, old.mac));
      s.plugs.set(op.plug.ifname, { ...op.plug });
      break;
    }
    case 'port.unplug':
      s.plugs.delete(op.plug.ifname);
      if (s.fdb.get(fdbKey(op.plug.vni, op.plug.mac)) === `@${op.plug.ifname}`) s.fdb.delete(fdbKey(op.plug.vni, op.plug.mac));
      break;
    case 'fdb.set':
      s.fdb.set(fdbKey(op.vni, op.mac), op.dst);
      break;
    case 'fdb.del':
      s.fdb.delete(fdbKey(op.vni, op.mac));
      break;
    case 'neigh.set':
      s.neigh.set(neighKey(op.vni, op.ip), op.mac);
      break;
    case 'neigh.del':
      s.neigh.delete(neighKey(op.vni, op.ip));
      break;
    case 'announce':
      break;
  }
}

function dropVni(s: KernelState, vni: number): void {
  const prefix = `${vni}|`;
  for (const k of s.fdb.keys()) if (k.startsWith(prefix)) s.fdb.delete(k);
  for (const k of s.neigh.keys()) if (k.startsWith(prefix)) s.neigh.delete(k);
  for (const [name, p] of s.plugs) if (p.vni === vni) s.plugs.delete(name);
}
