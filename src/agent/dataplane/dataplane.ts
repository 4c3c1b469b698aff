// The Dataplane seam: what weft owns in a host's kernel (KernelState), the
// steps that change it (Plan), and the interface with a Linux and a fake
// implementation. docs/dataplane.md explains every object and why it exists.
import type { GuardPort } from './guard-spec.js';

/** One VXLAN segment on the host: device `wvx<vni>` enslaved to bridge `wbr<vni>`. */
export interface VniState {
  vni: number;
  mtu: number;
  /** The host's underlay (VTEP) address the vxlan device sends from. */
  local: string;
  /** Lazy (SVP-backed) mode: `proxy l2miss l3miss`, no ARP/ND suppression on the bridge port. */
  lazy: boolean;
}

/** A local port's host-side interface plugged into its network's bridge. */
export interface PlugState {
  ifname: string;
  vni: number;
  mtu: number;
  mac: string;
}

/**
 * Everything weft owns in the kernel of one host, keyed for diffing:
 * - `fdb`: `vni|mac` -> the remote VTEP (the vxlan `self` entry plus the
 *   bridge's `master static` entry pointing at the vxlan port), or
 *   `@<ifname>` for a local port's static bridge entry, or `?` when only part
 *   of a remote entry was found (it gets rewritten);
 * - `neigh`: `vni|ip` -> mac, permanent entries on `wbr<vni>` that the bridge
 *   uses to answer ARP and ND itself (suppression);
 * - `guards`: ifname -> the spec hash of its nftables chain.
 */
export interface KernelState {
  vnis: Map<number, VniState>;
  plugs: Map<string, PlugState>;
  fdb: Map<string, string>;
  neigh: Map<string, string>;
  guards: Map<string, string>;
  /** Host-side port interfaces (`wp…`) that exist, plugged or not (observed only). */
  links: Set<string>;
}

export function emptyKernelState(): KernelState {
  return { vnis: new Map(), plugs: new Map(), fdb: new Map(), neigh: new Map(), guards: new Map(), links: new Set() };
}

/**
 * A kernel's content that observe() can fill and steps can be applied to:
 * the small maps as they are, FDB and neighbour entries by VNI and address
 * (a KernelState keys them `vni|addr`, see kernelEntries; the agent's
 * model packs them).
 */
export interface KernelEntries {
  vnis: Map<number, VniState>;
  plugs: Map<string, PlugState>;
  guards: Map<string, string>;
  links: Set<string>;
  fdbGet(vni: number, mac: string): string | undefined;
  fdbSet(vni: number, mac: string, dst: string): void;
  fdbDelete(vni: number, mac: string): void;
  neighSet(vni: number, ip: string, mac: string): void;
  neighDelete(vni: number, ip: string): void;
  /** Drops every FDB and neighbour entry of the VNI (its devices are gone). */
  dropEntries(vni: number): void;
}

/** A KernelState seen as KernelEntries (its Maps, changed in place). */
export function kernelEntries(s: KernelState): KernelEntries {
  return {
    get vnis() {
      return s.vnis;
    },
    get plugs() {
      return s.plugs;
    },
    get guards() {
      return s.guards;
    },
    get links() {
      return s.links;
    },
    fdbGet: (vni, mac) => s.fdb.get(fdbKey(vni, mac)),
    fdbSet: (vni, mac, dst) => void s.fdb.set(fdbKey(vni, mac), dst),
    fdbDelete: (vni, mac) => void s.fdb.delete(fdbKey(vni, mac)),
    neighSet: (vni, ip, mac) => void s.neigh.set(neighKey(vni, ip), mac),
    neighDelete: (vni, ip) => void s.neigh.delete(neighKey(vni, ip)),
    dropEntries(vni) {
      const prefix = `${vni}|`;
      for (const k of s.fdb.keys()) if (k.startsWith(prefix)) s.fdb.delete(k);
      for (const k of s.neigh.keys()) if (k.startsWith(prefix)) s.neigh.delete(k);
    },
  };
}

export const fdbKey = (vni: number, mac: string): string => `${vni}|${mac}`;
export const neighKey = (vni: number, ip: string): string => `${vni}|${ip}`;
export function splitKey(key: string): [number, string] {
  const i = key.indexOf('|');
  return [Number(key.slice(0, i)), key.slice(i + 1)];
}

/** One step of a plan. Every step but `vni.add` is idempotent (replace, or delete of what may be gone): see Dataplane.apply. */
export type Op =
  | { op: 'vni.add'; vni: VniState }
  | { op: 'vni.mtu'; vni: number; mtu: number }
  | { op: 'vni.del'; vni: number }
  | { op: 'guard.set'; port: GuardPort; hash: string }
  | { op: 'guard.del'; ifname: string }
  | { op: 'port.plug'; plug: PlugState }
  | { op: 'port.unplug'; plug: PlugState }
  /** `was` is what the entry pointed at before (a move), when it existed. */
  | { op: 'fdb.set'; vni: number; mac: string; dst: string; was?: string }
  | { op: 'fdb.del'; vni: number; mac: string; was: string }
  | { op: 'neigh.set'; vni: number; ip: string; mac: string }
  | { op: 'neigh.del'; vni: number; ip: string }
  /** Gratuitous ARP and unsolicited NA for a port that just became local (a new port or a move). */
  | { op: 'announce'; ifname: string; vni: number; mac: string; ips: string[] };

/** Steps in the order they must run: guards before plugs, devices before entries, deletions last. */
export interface Plan {
  ops: Op[];
  /** Local ports wanted but whose interface does not exist yet (the hypervisor has not made it). */
  waiting: string[];
}

export interface ApplyResult {
  /** Steps that failed (the rest were applied); empty when all went through. */
  failed: { op: Op; error: string }[];
}

/** A running watch of the kernel (a monitor process on Linux); `stop()` ends it for good and is idempotent. */
export interface Watch {
  stop(): void;
}

/** A lazy-mode entry on `wvx<vni>`, by key: an IP's neighbour entry (l3) or a MAC's VTEP entry (l2). */
export type LazyKey = { kind: 'l3'; vni: number; ip: string } | { kind: 'l2'; vni: number; mac: string };

/** A kernel miss on a weft vxlan device (`proxy l2miss l3miss`): nothing is known of that key yet. */
export type Miss = LazyKey;

/**
 * The answer to a miss, as entries on `wvx<vni>`: for l3 the IP's MAC and
 * the VTEP behind it (a VTEP entry for the MAC and a neighbour entry for the
 * IP), for l2 the MAC's VTEP.
 */
export type LazyEntry = { kind: 'l3'; vni: number; ip: string; mac: string; dst: string } | { kind: 'l2'; vni: number; mac: string; dst: string };

/** A local port on a routed network: its host-side interface and the network's MTU. */
export interface RoutedPortNet {
  ifname: string;
  mtu: number;
}

/** A VIP delivered on this host by DNAT to its healthy local backends. */
export interface VipNat {
  /** The VIP address (IPv4 or IPv6). */
  vip: string;
  /** Healthy local backends, in the VIP's family (sorted). */
  backends: string[];
}

/**
 * A host's kernel as weft sees it. Implementations: `LinuxDataplane`
 * (iproute2 and nftables, batched) and `FakeDataplane` (in memory, enforcing
 * the kernel's rules, failing on demand). Every kernel write of the agent
 * goes through it: the overlay and its guards (observe/apply), the watches of
 * interfaces and misses, lazy-mode entries, and the host side of routed
 * networks and VIPs (applyRouted). One contract suite holds both
 * implementations to all of it, each case on each: its cases are
 * test/contract/dataplane.contract.test.ts, its harness
 * test/support/dataplane-contract.ts. Observed back, an applied plan reads as applyToState
 * (kernel-state.ts) says, with one rule of the kernel's: a plugged port's MAC
 * is read from its `@ifname` FDB entry, so a plug without that entry is
 * observed with mac '' (and reconcile re-plugs it).
 */
export interface Dataplane {
  /** Reads every object weft owns; touches nothing. Objects not weft's are never reported. */
  observe(): Promise<KernelState>;
  /**
   * Optional: reads the same into `into` (empty), building no KernelState:
   * at 100k remote ports its Maps, and the kernel's dumps parsed whole, are
   * hundreds of MB for a moment.
   */
  observeInto?(into: KernelEntries): Promise<void>;
  /**
   * Runs a plan's steps in order, batched. Failures are reported per step,
   * with why, rather than thrown: a bad step does not stop the others.
   *
   * Idempotent, so a plan may be re-run after a partial failure: every step
   * but `vni.add`. Applied again, `vni.mtu`, `guard.set`, `port.plug`,
   * `fdb.set` and `neigh.set` (replacements) change nothing and do not fail;
   * `vni.del`, `guard.del`, `port.unplug`, `fdb.del` and `neigh.del` of what
   * is gone (a missing VNI or interface included) succeed. `vni.add` of a VNI
   * whose devices exist fails (`File exists`) and leaves them as they are:
   * the planner deletes them first.
   *
   * Fails: `vni.mtu`, `fdb.set`, `neigh.set` on a VNI that does not exist;
   * `port.plug` of a missing interface or into a missing VNI; `fdb.set` to
   * `@ifname` of a port not plugged; `guard.set` of an invalid port (or one
   * the kernel refuses). Each failure is the step's own: the other steps,
   * other ports' guards included, are applied. One failure takes others
   * with it, on purpose: a port whose `guard.set` failed is not put to use
   * in that apply: its `port.plug` and every `fdb.set` to its `@ifname`
   * after it fail too ("its guard is not in place"), so no port is plugged
   * unguarded (a port plugged before keeps its plug: the caller decides).
   * `announce` is best effort and leaves nothing to observe.
   */
  apply(plan: Plan): Promise<ApplyResult>;
  /**
   * Optional: the host's interfaces changed (some may have been deleted and
   * made again under the same name); called before the plan that follows.
   */
  linksChanged?(): void;
  /** Only the host-side port interfaces (`wp…`) that exist; cheap (no entries are read). Touches nothing. */
  observeLinks(): Promise<Set<string>>;
  /**
   * Calls `onChange` when a host-side port interface (`wp…`) may have
   * appeared, changed or gone, until stopped; calls may come in bursts (the
   * caller debounces) and carry no detail: read observeLinks() after. A
   * watch that breaks is restarted.
   */
  watchLinks(onChange: () => void): Watch;
  /** Lazy mode: calls `onMiss` for each miss the kernel raises on a weft vxlan device, until stopped (repeats included). */
  watchMisses(onMiss: (m: Miss) => void): Watch;
  /**
   * Lazy mode: installs the answer to a miss as permanent entries on
   * `wvx<vni>` (replacing what they held: idempotent). Throws E_DATAPLANE
   * when the device is missing or the kernel refuses.
   */
  lazySet(entry: LazyEntry): Promise<void>;
  /**
   * Lazy mode: removes the entries (SVP shoot-downs), neighbours first, then
   * VTEP entries. Entries (or devices) already gone are not failures; throws
   * E_DATAPLANE when the removal could not run at all.
   */
  lazyDelete(keys: LazyKey[]): Promise<void>;
  /**
   * Makes the host side of routed networks match (the whole of it, not a
   * delta): each port whose interface exists gets MTU, up, the gateway
   * addresses and strict reverse-path filtering; one nftables table guards
   * those ports and DNATs each VIP to its healthy backends. Ports whose
   * interface does not exist are skipped (configured on a later call, once it
   * does). Returns the ports configured. Idempotent, and writes only what
   * changed since the last call (a re-made interface is configured again).
   * Throws E_INVALID_ARG on a bad port or VIP address, E_DATAPLANE naming
   * the command that failed.
   */
  applyRouted(ports: RoutedPortNet[], vips: VipNat[]): Promise<Set<string>>;
  /** Forgets what applyRouted wrote, so the next call rewrites it all (after a failure or on resync). */
  resetRouted(): void;
  /** Removes the routed ports' table (routing shut off); the ports' addresses stay. Idempotent. */
  removeRouted(): Promise<void>;
}
