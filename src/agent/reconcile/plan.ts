// Reconcile: desired vs current kernel state -> the plan that makes them
// equal, touching only what differs (pure). What a plan does to the state is
// dataplane/kernel-state.ts's.
import { type KernelState, type Op, type Plan, type PlugState, splitKey, type VniState } from '../dataplane/dataplane.js';
import type { GuardPort } from '../dataplane/guard-spec.js';
import type { Desired } from './desired.js';

/**
 * The steps that turn `current` into `desired.state`. Objects not in
 * `desired` are removed; objects equal in both are left alone, so running
 * the plan on an already converged host is empty. Remote entries of lazy VNIs
 * belong to the miss handler and are neither added nor removed here.
 */
export function plan(desired: Desired, current: KernelState): Plan {
  const want = desired.state;
  const d = planDevices({ ...want, guardPorts: desired.guardPorts, ips: desired.ips }, current);
  const { gone, lazy, plugged } = d;
  const sets: Op[] = [];
  const dels: Op[] = [];
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
  const ops = d.head;
  for (const list of [sets, dels, d.tail]) for (const op of list) ops.push(op);
  return { ops, waiting: d.waiting };
}

/** The small part of what a host wants: VNIs, and the plugs and guards of its own ports. */
export interface WantDevices {
  vnis: Map<number, VniState>;
  plugs: Map<string, PlugState>;
  guards: Map<string, string>;
  guardPorts: Map<string, GuardPort>;
  ips: Map<string, string[]>;
}

/** What planDevices reads of the current state. */
export interface HaveDevices {
  vnis: Map<number, VniState>;
  plugs: Map<string, PlugState>;
  guards: Map<string, string>;
  links: Set<string>;
}

/** The device steps of a plan, and what the entry steps between them need to know. */
export interface DevicePlan {
  /** VNI creations and MTUs, guards, plugs: the steps before the entries. */
  head: Op[];
  /** Removals of VNIs, guards and plugs, then announcements: the steps after the entries. */
  tail: Op[];
  waiting: string[];
  /** VNIs whose devices are (re)created or removed: nothing on them survives, or is kept. */
  gone: (vni: number) => boolean;
  /** Remote entries of a lazy VNI are the miss handler's. */
  lazy: (vni: number) => boolean;
  /** Local ports plugged once the plan has run (their static FDB entries can be set). */
  plugged: Set<string>;
}

/** Plans the VNIs, guards and plugs (shared by `plan` and the agent's packed planner). */
export function planDevices(want: WantDevices, current: HaveDevices): DevicePlan {
  const add: Op[] = [];
  const guards: Op[] = [];
  const plugs: Op[] = [];
  const tail: Op[] = [];
  const announce: Op[] = [];
  const waiting: string[] = [];
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
    const port = want.guardPorts.get(ifname);
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
    if (!c || c.vni !== d.vni || fresh.has(d.vni)) announce.push({ op: 'announce', ifname, vni: d.vni, mac: d.mac, ips: want.ips.get(ifname) ?? [] });
  }
  for (const [ifname, c] of current.plugs) if (!want.plugs.has(ifname) && !gone(c.vni)) tail.push({ op: 'port.unplug', plug: c });

  const head = add;
  for (const list of [guards, plugs]) for (const op of list) head.push(op);
  for (const op of announce) tail.push(op);
  return { head, tail, waiting, gone, lazy, plugged };
}
