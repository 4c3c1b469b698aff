// An in-memory Dataplane for unit tests: keeps the kernel's state, enforces
// its rules (no entry on a missing device, no plug of a missing interface,
// no duplicate device) and fails on demand, like calico's mock netlink.
// test/contract/dataplane.contract.test.ts holds it to what LinuxDataplane does.
import { invalid, WeftError } from '../../../model/errors.js';
import {
  type ApplyResult,
  type Dataplane,
  emptyKernelState,
  fdbKey,
  type KernelState,
  type LazyEntry,
  type LazyKey,
  type Miss,
  neighKey,
  type Op,
  type Plan,
  type RoutedPortNet,
  type VipNat,
  type Watch,
} from '../dataplane.js';
import { normalGuardPort } from '../guard-spec.js';
import { applyToState } from '../kernel-state.js';

/** The kinds of operation that failNext can make fail: plan steps, and the operations outside plans. */
export type FakeFailure = Op['op'] | 'lazy.set' | 'lazy.del' | 'routed.apply';

export class FakeDataplane implements Dataplane {
  readonly state: KernelState = emptyKernelState();
  /** Every step applied, in order (announcements included). */
  readonly log: Op[] = [];
  /** Lazy mode's entries on `wvx<vni>`: `vni|mac` -> VTEP, and `vni|ip` -> MAC (not reported by observe). */
  readonly lazy = { fdb: new Map<string, string>(), neigh: new Map<string, string>() };
  /**
   * The host side of routed networks: each configured port's interface and
   * MTU, and the ports guarded and VIPs NAT'ed by the table (null: no table).
   */
  readonly routed: { ports: Map<string, number>; table: { ports: string[]; vips: VipNat[] } | null } = { ports: new Map(), table: null };
  private failing = new Map<FakeFailure, number>();
  private readonly linkWatchers = new Set<() => void>();
  private readonly missWatchers = new Set<(m: Miss) => void>();

  /** The hypervisor made (or removed) a port's interface. */
  addLink(ifname: string): void {
    this.state.links.add(ifname);
    this.notifyLinks();
  }

  removeLink(ifname: string): void {
    this.state.links.delete(ifname);
    const p = this.state.plugs.get(ifname);
    if (p) applyToState(this.state, { op: 'port.unplug', plug: p });
    // Its addresses go with it.
    this.routed.ports.delete(ifname);
    this.notifyLinks();
  }

  /** The kernel raises a miss (lazy mode) on a weft vxlan device: only on one that exists, as the kernel would. */
  raiseMiss(m: Miss): void {
    if (!this.state.vnis.has(m.vni)) return;
    for (const w of [...this.missWatchers]) w(m);
  }

  /** The next `count` operations of this kind fail. */
  failNext(kind: FakeFailure, count = 1): void {
    this.failing.set(kind, (this.failing.get(kind) ?? 0) + count);
  }

  async observe(): Promise<KernelState> {
    const s = this.state;
    return {
      vnis: new Map([...s.vnis].map(([k, v]) => [k, { ...v }])),
      plugs: new Map([...s.plugs].map(([k, v]) => [k, { ...v, mac: this.plugMac(v.ifname, v.vni, v.mac) }])),
      fdb: new Map(s.fdb),
      neigh: new Map(s.neigh),
      guards: new Map(s.guards),
      links: new Set(s.links),
    };
  }

  async observeLinks(): Promise<Set<string>> {
    return new Set(this.state.links);
  }

  async apply(plan: Plan): Promise<ApplyResult> {
    const failed: ApplyResult['failed'] = [];
    /** Ports whose guard.set failed in this apply: they are not plugged, nor pointed at. */
    const unguarded = new Map<string, string>();
    for (const op of plan.ops) {
      try {
        const held = op.op === 'port.plug' ? op.plug.ifname : op.op === 'fdb.set' && op.dst.startsWith('@') ? op.dst.slice(1) : null;
        const why = held === null ? undefined : unguarded.get(held);
        if (why !== undefined) throw new WeftError('E_DATAPLANE', `${op.op} ${held}: not done: its guard is not in place: ${why}`);
        try {
          this.check(op);
        } catch (e) {
          if (op.op === 'guard.set') unguarded.set(op.port.ifname, (e as Error).message);
          throw e;
        }
        applyToState(this.state, op);
        this.log.push(op);
        // Deleting the devices deletes their entries.
        if (op.op === 'vni.del') this.dropLazy(op.vni);
      } catch (e) {
        failed.push({ op, error: (e as Error).message });
      }
    }
    return { failed };
  }

  watchLinks(onChange: () => void): Watch {
    const w = () => onChange();
    this.linkWatchers.add(w);
    return { stop: () => void this.linkWatchers.delete(w) };
  }

  watchMisses(onMiss: (m: Miss) => void): Watch {
    const w = (m: Miss) => onMiss(m);
    this.missWatchers.add(w);
    return { stop: () => void this.missWatchers.delete(w) };
  }

  async lazySet(e: LazyEntry): Promise<void> {
    this.injected('lazy.set');
    if (!this.state.vnis.has(e.vni)) throw new WeftError('E_DATAPLANE', `lazy.set: Cannot find device "wvx${e.vni}"`);
    this.lazy.fdb.set(fdbKey(e.vni, e.mac), e.dst);
    if (e.kind === 'l3') this.lazy.neigh.set(neighKey(e.vni, e.ip), e.mac);
  }

  async lazyDelete(keys: LazyKey[]): Promise<void> {
    this.injected('lazy.del');
    for (const k of keys) {
      if (k.kind === 'l3') this.lazy.neigh.delete(neighKey(k.vni, k.ip));
      else this.lazy.fdb.delete(fdbKey(k.vni, k.mac));
    }
  }

  async applyRouted(ports: RoutedPortNet[], vips: VipNat[]): Promise<Set<string>> {
    this.injected('routed.apply');
    // Addresses can be set only on an interface that exists: the others wait for the next call.
    const present = ports.filter((p) => this.state.links.has(p.ifname));
    for (const p of present) if (!Number.isInteger(p.mtu) || p.mtu < 1280 || p.mtu > 9000) throw invalid('port.mtu', p.mtu, 'must be an integer 1280..9000');
    for (const p of present) this.routed.ports.set(p.ifname, p.mtu);
    const table = {
      ports: present.map((p) => p.ifname).sort(),
      vips: vips
        .filter((v) => v.backends.length > 0)
        .map((v) => ({ vip: v.vip, backends: [...v.backends].sort() }))
        .sort((a, b) => (a.vip < b.vip ? -1 : 1)),
    };
    this.routed.table = table;
    return new Set(present.map((p) => p.ifname));
  }

  /** Nothing to forget: the fake rewrites its whole state on every call (the kernel keeps what was written). */
  resetRouted(): void {}

  async removeRouted(): Promise<void> {
    this.routed.table = null;
  }

  /**
   * A plug's MAC as the kernel shows it: read from the port's static entry on
   * its bridge, so a plug without one is seen with none ('').
   */
  private plugMac(ifname: string, vni: number, mac: string): string {
    const at = `@${ifname}`;
    if (this.state.fdb.get(fdbKey(vni, mac)) === at) return mac;
    const prefix = fdbKey(vni, '');
    for (const [key, dst] of this.state.fdb) if (dst === at && key.startsWith(prefix)) return key.slice(prefix.length);
    return '';
  }

  /** Interfaces changed: the link watchers hear of it. */
  private notifyLinks(): void {
    for (const w of [...this.linkWatchers]) w();
  }

  private dropLazy(vni: number): void {
    const prefix = `${vni}|`;
    for (const m of [this.lazy.fdb, this.lazy.neigh]) for (const k of m.keys()) if (k.startsWith(prefix)) m.delete(k);
  }

  private injected(kind: FakeFailure): void {
    const left = this.failing.get(kind) ?? 0;
    if (left > 0) {
      this.failing.set(kind, left - 1);
      throw new WeftError('E_DATAPLANE', `${kind}: injected failure`);
    }
  }

  private check(op: Op): void {
    this.injected(op.op);
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
      case 'guard.set':
        // nft is given only valid ports: LinuxDataplane's renderer refuses the others.
        normalGuardPort(op.port);
        break;
      default:
        break;
    }
  }
}
