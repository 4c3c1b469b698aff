// An in-memory Dataplane for unit tests: keeps the kernel's state, enforces
// its rules (no entry on a missing device, no plug of a missing interface,
// no duplicate device) and fails on demand, like calico's mock netlink.
import { WeftError } from '../../../model/errors.js';
import { applyToState } from '../../reconcile/plan.js';
import { type ApplyResult, type Dataplane, emptyKernelState, type KernelState, type Op, type Plan } from '../dataplane.js';

export class FakeDataplane implements Dataplane {
  readonly state: KernelState = emptyKernelState();
  /** Every step applied, in order (announcements included). */
  readonly log: Op[] = [];
  private failing = new Map<Op['op'], number>();

  /** The hypervisor made (or removed) a port's interface. */
  addLink(ifname: string): void {
    this.state.links.add(ifname);
  }

  removeLink(ifname: string): void {
    this.state.links.delete(ifname);
    const p = this.state.plugs.get(ifname);
    if (p) applyToState(this.state, { op: 'port.unplug', plug: p });
  }

  /** The next `count` steps of this kind fail. */
  failNext(kind: Op['op'], count = 1): void {
    this.failing.set(kind, (this.failing.get(kind) ?? 0) + count);
  }

  async observe(): Promise<KernelState> {
    const s = this.state;
    return {
      vnis: new Map([...s.vnis].map(([k, v]) => [k, { ...v }])),
      plugs: new Map([...s.plugs].map(([k, v]) => [k, { ...v }])),
      fdb: new Map(s.fdb),
      neigh: new Map(s.neigh),
      guards: new Map(s.guards),
      links: new Set(s.links),
    };
  }

  async apply(plan: Plan): Promise<ApplyResult> {
    const failed: ApplyResult['failed'] = [];
    for (const op of plan.ops) {
      try {
        this.check(op);
        applyToState(this.state, op);
        this.log.push(op);
      } catch (e) {
        failed.push({ op, error: (e as Error).message });
      }
    }
    return { failed };
  }

  private check(op: Op): void {
    const left = this.failing.get(op.op) ?? 0;
    if (left > 0) {
      this.failing.set(op.op, left - 1);
      throw new WeftError('E_DATAPLANE', `${op.op}: injected failure`);
    }
    const s = this.state;
    const needVni = (vni: number) => {
      if (!s.vnis.has(vni)) throw new WeftError('E_DATAPLANE', `${op.op}: Cannot find device "wvx${vni}"`);
    };
    switch (op.op) {
      case 'vni.add':
        if (s.vnis.has(op.vni.vni)) throw new WeftError('E_DATAPLANE', `vni.add: device wvx${op.vni.vni} exists`);
        break;
      case 'vni.mtu':
        needVni(op.vni);
        break;
      case 'port.plug':
        needVni(op.plug.vni);
        if (!s.links.has(op.plug.ifname)) throw new WeftError('E_DATAPLANE', `port.plug: Cannot find device "${op.plug.ifname}"`);
        break;
      case 'fdb.set':
        needVni(op.vni);
        if (op.dst.startsWith('@') && s.plugs.get(op.dst.slice(1))?.vni !== op.vni)
          throw new WeftError('E_DATAPLANE', `fdb.set: ${op.dst.slice(1)} is not a port of wbr${op.vni}`);
        break;
      case 'neigh.set':
        needVni(op.vni);
        break;
      default:
        break;
    }
  }
}
