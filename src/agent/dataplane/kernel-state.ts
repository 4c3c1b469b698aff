// What each step of a plan leaves in the kernel (pure): the model of the
// kernel's state that the fake dataplane keeps, the agent's KernelModel
// follows and the contract suite holds LinuxDataplane to.
import { type KernelEntries, type KernelState, kernelEntries, type Op } from './dataplane.js';

const entriesOf = new WeakMap<KernelState, KernelEntries>();

/** What a successful step leaves in the kernel (the model the fake and the agent keep). */
export function applyToState(s: KernelState, op: Op): void {
  let e = entriesOf.get(s);
  if (!e) {
    e = kernelEntries(s);
    entriesOf.set(s, e);
  }
  applyStep(e, op);
}

/** applyToState on any KernelEntries (the agent's packed model among them). */
export function applyStep(s: KernelEntries, op: Op): void {
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
      s.dropEntries(op.vni);
      for (const [name, p] of s.plugs) if (p.vni === op.vni) s.plugs.delete(name);
      break;
    case 'guard.set':
      s.guards.set(op.port.ifname, op.hash);
      break;
    case 'guard.del':
      s.guards.delete(op.ifname);
      break;
    case 'port.plug': {
      const old = s.plugs.get(op.plug.ifname);
      if (old && old.vni !== op.plug.vni) s.fdbDelete(old.vni, old.mac);
      s.plugs.set(op.plug.ifname, { ...op.plug });
      break;
    }
    case 'port.unplug':
      s.plugs.delete(op.plug.ifname);
      if (s.fdbGet(op.plug.vni, op.plug.mac) === `@${op.plug.ifname}`) s.fdbDelete(op.plug.vni, op.plug.mac);
      break;
    case 'fdb.set':
      s.fdbSet(op.vni, op.mac, op.dst);
      break;
    case 'fdb.del':
      s.fdbDelete(op.vni, op.mac);
      break;
    case 'neigh.set':
      s.neighSet(op.vni, op.ip, op.mac);
      break;
    case 'neigh.del':
      s.neighDelete(op.vni, op.ip);
      break;
    case 'announce':
      break;
  }
}
