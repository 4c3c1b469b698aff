// The agent's planner: the plan that plan(desiredKernel(state), current)
// would make, computed from the packed port table and kernel model with no
// Map of strings on either side, and kept packed until it is applied, a
// chunk of steps at a time. A full sync of 100k remote ports then holds a
// few MB of typed arrays instead of 60 MB of Maps and step objects.
import { packIpv4, packIpv6, unpackIpv4, unpackIpv6, unpackMac } from '../../model/packed-addr.js';
import { RowIndex } from '../../model/packed-table.js';
import { fdbKey, neighKey, type Op, splitKey } from '../dataplane/dataplane.js';
import type { AgentState } from '../state/agent-state.js';
import type { PortTable } from '../state/port-table.js';
import { type DesiredOptions, desiredDevices, desiredKernel, wanted } from './desired.js';
import { type KernelModel, macOfWords, packableVni } from './kernel-model.js';
import { plan, planDevices } from './plan.js';

// Packed steps: a kind word, then the kind's words.
const FDB_SET = 1; // vni, mac hi, mac lo, dst id, was id + 1 (0: none)
const FDB_DEL = 2; // vni, mac hi, mac lo, was id
const NEIGH4_SET = 3; // vni, ipv4, mac hi, mac lo
const NEIGH6_SET = 4; // vni, ipv6 x4, mac hi, mac lo
const NEIGH4_DEL = 5; // vni, ipv4
const NEIGH6_DEL = 6; // vni, ipv6 x4
const STEP = 7; // index into `odd`: a step built as an object (text that does not pack)
/**
 * Words per segment of packed steps: a full sync's 8 MB of them are never
 * copied to grow, and each segment goes as soon as its steps are taken.
 */
const SEGMENT = 1 << 16;

/** Ports by [vni, mac hi, mac lo]. */
class FdbIndex extends RowIndex {
  constructor(private readonly t: PortTable) {
    super(3);
  }
  protected keyOf(slot: number, out: Uint32Array): void {
    out[0] = this.t.vniAt(slot);
    out[1] = this.t.macHiAt(slot);
    out[2] = this.t.macLoAt(slot);
  }
}

/** Ports by [vni, ipv4]. */
class Ipv4Index extends RowIndex {
  constructor(private readonly t: PortTable) {
    super(2);
  }
  protected keyOf(slot: number, out: Uint32Array): void {
    out[0] = this.t.vniAt(slot);
    out[1] = this.t.ipv4PackedAt(slot);
  }
}

/** Ports by [vni, ipv6 words]. */
class Ipv6Index extends RowIndex {
  constructor(private readonly t: PortTable) {
    super(5);
  }
  protected keyOf(slot: number, out: Uint32Array): void {
    out[0] = this.t.vniAt(slot);
    copyIpv6(this.t.ipv6Words(), slot * 4, out, 1);
  }
}

/** Words `at..at+3` of `from` to `out[to..to+3]`. */
function copyIpv6(from: Uint32Array, at: number, out: Uint32Array, to: number): void {
  out[to] = from[at] as number;
  out[to + 1] = from[at + 1] as number;
  out[to + 2] = from[at + 2] as number;
  out[to + 3] = from[at + 3] as number;
}

/** Indexes of the desired entries by key, kept between passes so their buckets are not reallocated. */
export class PlanScratch {
  readonly fdb: RowIndex;
  readonly v4: RowIndex;
  readonly v6: RowIndex;

  constructor(s: AgentState) {
    this.fdb = new FdbIndex(s.ports);
    this.v4 = new Ipv4Index(s.ports);
    this.v6 = new Ipv6Index(s.ports);
  }
}

/** A plan's steps in order, handed out by `take`; the entry steps stay packed until then. */
export class PackedPlan {
  /** Steps in the whole plan. */
  readonly total: number;
  private at = 0;
  private h = 0;
  /** The segment being read, and where in it. */
  private seg = 0;
  private r = 0;
  private t = 0;
  private readonly segments: Uint32Array[];
  private readonly used: number[];
  private readonly odd: Op[];

  constructor(
    private readonly head: Op[],
    steps: Steps | null,
    private readonly tail: Op[],
    readonly waiting: string[],
    private readonly model: KernelModel,
    /** Local ports left unguarded and unplugged: their guard spec is refused (DesiredDevices.refused). */
    readonly refused: Map<string, { portId: string; reason: string }> = new Map(),
  ) {
    this.segments = steps?.segments ?? [];
    this.used = steps?.used ?? [];
    this.odd = steps?.odd ?? [];
    this.total = head.length + (steps?.count ?? 0) + tail.length;
  }

  get done(): boolean {
    return this.at === this.total;
  }

  /** The next `n` steps (fewer at the end). */
  take(n: number): Op[] {
    const out: Op[] = [];
    while (out.length < n && this.at < this.total) {
      if (this.h < this.head.length) out.push(this.head[this.h++] as Op);
      else if (this.seg < this.segments.length) {
        if (this.r < (this.used[this.seg] as number)) out.push(this.decode());
        else {
          // This segment is read: let it go.
          this.segments[this.seg++] = EMPTY;
          this.r = 0;
          continue;
        }
      } else out.push(this.tail[this.t++] as Op);
      this.at++;
    }
    return out;
  }

  private decode(): Op {
    const w = this.segments[this.seg] as Uint32Array;
    const r = this.r;
    const kind = w[r] as number;
    const vni = w[r + 1] as number;
    const fdb = this.model.fdb;
    switch (kind) {
      case FDB_SET: {
        this.r += 6;
        const was = w[r + 5] as number;
        const dst = fdb.dst(w[r + 4] as number);
        return was === 0 ? { op: 'fdb.set', vni, mac: macAt(w, r + 2), dst } : { op: 'fdb.set', vni, mac: macAt(w, r + 2), dst, was: fdb.dst(was - 1) };
      }
      case FDB_DEL:
        this.r += 5;
        return { op: 'fdb.del', vni, mac: macAt(w, r + 2), was: fdb.dst(w[r + 4] as number) };
      case NEIGH4_SET:
        this.r += 5;
        return { op: 'neigh.set', vni, ip: unpackIpv4(w[r + 2] as number), mac: macAt(w, r + 3) };
      case NEIGH6_SET:
        this.r += 8;
        return { op: 'neigh.set', vni, ip: unpackIpv6(w, r + 2), mac: macAt(w, r + 6) };
      case NEIGH4_DEL:
        this.r += 3;
        return { op: 'neigh.del', vni, ip: unpackIpv4(w[r + 2] as number) };
      case NEIGH6_DEL:
        this.r += 6;
        return { op: 'neigh.del', vni, ip: unpackIpv6(w, r + 2) };
      default:
        this.r += 2;
        return this.odd[vni] as Op;
    }
  }
}

const EMPTY = new Uint32Array(0);
const macAt = (w: Uint32Array, at: number) => unpackMac(macOfWords(w[at] as number, w[at + 1] as number));

/** The packed steps of a plan being made. */
class Steps {
  /** Filled segments, and the words used in each. */
  readonly segments: Uint32Array[] = [];
  readonly used: number[] = [];
  /** The segment being filled (the first one small: most plans are a delta's few steps). */
  a = new Uint32Array(256);
  n = 0;
  count = 0;
  readonly odd: Op[] = [];

  /** Room for a step of `k` words; returns the array to write them at `n`. */
  room(k: number): Uint32Array {
    if (this.n + k > this.a.length) {
      this.segments.push(this.a);
      this.used.push(this.n);
      this.a = new Uint32Array(SEGMENT);
      this.n = 0;
    }
    this.count++;
    return this.a;
  }

  /** A step that does not pack, as an object. */
  step(op: Op): void {
    const a = this.room(2);
    a[this.n++] = STEP;
    a[this.n++] = this.odd.length;
    this.odd.push(op);
  }

  done(): this {
    this.segments.push(this.a);
    this.used.push(this.n);
    return this;
  }
}

/**
 * The steps that make the kernel `m` hold what `s` wants: the same steps, in
 * the same order, as plan(desiredKernel(s, o), current) for a KernelState
 * `current` with the content of `m`, but FDB and neighbour removals, which
 * may come in another order among themselves (they are independent). Where
 * two ports claim one entry the last one wins, as in desiredKernel; its step
 * then comes at that port's place.
 */
export function planPacked(s: AgentState, o: DesiredOptions, m: KernelModel, scratch: PlanScratch): PackedPlan {
  const t = s.ports;
  const want = desiredDevices(s, o);
  const d = planDevices(want, m);
  const { gone, plugged } = d;
  const lazy = o.lazy;
  const out = new Steps();
  const mf = m.fdb;
  const mn = m.neigh;
  /** Whether a port has entries (local ones always, remote ones unless lazy). */
  const entries = (slot: number) => wanted(t, slot, want.vnis) && (!lazy || want.ifnames.has(slot));

  // Indexes of the desired entries: each key's last port, as desiredKernel's Map.set leaves it.
  const { fdb: fdbIdx, v4: v4Idx, v6: v6Idx } = scratch;
  fdbIdx.reset(t.end);
  v4Idx.reset(lazy ? 0 : t.end);
  v6Idx.reset(lazy ? 0 : t.end);
  const oddFdb = new Map<string, number>();
  const oddNeigh = new Map<string, number>();
  // Two ports with one key are rare (never made by the server): without any, every port is its keys' last.
  let dupFdb = false;
  let dupNeigh = false;
  const addOdd = (map: Map<string, number>, key: string, slot: number) => {
    const had = map.has(key);
    map.set(key, slot);
    return had;
  };
  for (let slot = 0; slot < t.end; slot++) {
    if (!entries(slot)) continue;
    const vni = t.vniAt(slot);
    const packs = packableVni(vni);
    if (packs && t.macHiAt(slot) >= 0) dupFdb = fdbIdx.add(slot) || dupFdb;
    else dupFdb = addOdd(oddFdb, fdbKey(vni, t.macAt(slot)), slot) || dupFdb;
    if (lazy) continue;
    const k4 = t.ipv4Kind(slot);
    if (k4 === 1 && packs) dupNeigh = v4Idx.add(slot) || dupNeigh;
    else if (k4 !== 0) {
      const ip = t.ipv4At(slot) as string;
      // An IPv6 address in the IPv4 field would be keyed as IPv6 in the model: leave such a state to the reference planner.
      if (packs && packIpv6(ip, v6Idx.key, 1)) return referencePlan(s, o, m);
      if (ip) dupNeigh = addOdd(oddNeigh, neighKey(vni, ip), slot) || dupNeigh;
    }
    const k6 = t.ipv6Kind(slot);
    if (k6 === 1 && packs) dupNeigh = v6Idx.add(slot) || dupNeigh;
    else if (k6 !== 0) {
      const ip = t.ipv6At(slot) as string;
      if (packs && packIpv4(ip) >= 0) return referencePlan(s, o, m);
      if (ip) dupNeigh = addOdd(oddNeigh, neighKey(vni, ip), slot) || dupNeigh;
    }
  }
  // Entries of the model that are wanted, marked while setting: the rest are removed.
  const keptFdb = new Uint8Array(mf.packed.end);
  const kept4 = new Uint8Array(mn.v4.end);
  const kept6 = new Uint8Array(mn.v6.end);

  // FDB entries to set, in port order.
  const fk = fdbIdx.key;
  const mk = mf.packed.key;
  for (let slot = 0; slot < t.end; slot++) {
    if (!entries(slot)) continue;
    const vni = t.vniAt(slot);
    const hi = t.macHiAt(slot);
    const packs = packableVni(vni) && hi >= 0;
    let key = '';
    let e = -1;
    if (packs) {
      fk[0] = vni;
      fk[1] = hi;
      fk[2] = t.macLoAt(slot);
      if (dupFdb && fdbIdx.find() !== slot) continue;
      if (!gone(vni)) {
        mk[0] = vni;
        mk[1] = hi;
        mk[2] = fk[2] as number;
        e = mf.packed.find();
        if (e >= 0) keptFdb[e] = 1;
      }
    } else {
      key = fdbKey(vni, t.macAt(slot));
      if (oddFdb.get(key) !== slot) continue;
    }
    const ifname = want.ifnames.get(slot);
    if (ifname !== undefined && !plugged.has(ifname)) continue;
    const dst = ifname !== undefined ? `@${ifname}` : t.hostAt(slot).underlayIp;
    if (!packs) {
      const was = gone(vni) ? undefined : mf.odd.get(key);
      const mac = t.macAt(slot);
      if (was !== dst) out.step(was === undefined ? { op: 'fdb.set', vni, mac, dst } : { op: 'fdb.set', vni, mac, dst, was });
      continue;
    }
    const id = mf.dstId(dst);
    const was = e >= 0 ? mf.packed.value(e) : -1;
    if (was === id) continue;
    const a = out.room(6);
    a[out.n] = FDB_SET;
    a[out.n + 1] = vni;
    a[out.n + 2] = hi;
    a[out.n + 3] = fk[2] as number;
    a[out.n + 4] = id;
    a[out.n + 5] = was + 1;
    out.n += 6;
  }

  // Neighbour entries to set, in port order (IPv4, then IPv6).
  /** An entry whose address or MAC does not pack, compared as text; `indexed`: its key packs (and this port is its last). */
  const asText = (slot: number, vni: number, ip: string, indexed: boolean) => {
    if (!indexed && oddNeigh.get(neighKey(vni, ip)) !== slot) return;
    const mac = t.macAt(slot);
    if ((gone(vni) ? undefined : mn.get(vni, ip)) !== mac) out.step({ op: 'neigh.set', vni, ip, mac });
  };
  /** Finds the model's entry at the scratch key of `tbl` (marking it kept); true when it is missing or points elsewhere. */
  const differs = (tbl: typeof mn.v4, kept: Uint8Array, hi: number, lo: number) => {
    const e = tbl.find();
    if (e < 0) return true;
    kept[e] = 1;
    return tbl.value(e, 0) !== hi || tbl.value(e, 1) !== lo;
  };
  const k4 = v4Idx.key;
  const k6 = v6Idx.key;
  if (!lazy)
    for (let slot = 0; slot < t.end; slot++) {
      if (!entries(slot)) continue;
      const vni = t.vniAt(slot);
      const packs = packableVni(vni);
      const hi = t.macHiAt(slot);
      const lo = t.macLoAt(slot);
      const isGone = gone(vni);
      const kind4 = t.ipv4Kind(slot);
      if (kind4 === 1 && packs) {
        const ip = t.ipv4PackedAt(slot);
        k4[0] = vni;
        k4[1] = ip;
        if (!dupNeigh || v4Idx.find() === slot) {
          mn.v4.key[0] = vni;
          mn.v4.key[1] = ip;
          const changed = isGone || differs(mn.v4, kept4, hi, lo);
          if (hi < 0) asText(slot, vni, t.ipv4At(slot) as string, true);
          else if (changed) {
            const a = out.room(5);
            a[out.n] = NEIGH4_SET;
            a[out.n + 1] = vni;
            a[out.n + 2] = ip;
            a[out.n + 3] = hi;
            a[out.n + 4] = lo;
            out.n += 5;
          }
        }
      } else if (kind4 !== 0) {
        const ip = t.ipv4At(slot) as string;
        if (ip) asText(slot, vni, ip, false);
      }
      const kind6 = t.ipv6Kind(slot);
      if (kind6 === 1 && packs) {
        const w = t.ipv6Words();
        k6[0] = vni;
        copyIpv6(w, slot * 4, k6, 1);
        if (!dupNeigh || v6Idx.find() === slot) {
          const mk6 = mn.v6.key;
          mk6[0] = vni;
          copyIpv6(w, slot * 4, mk6, 1);
          const changed = isGone || differs(mn.v6, kept6, hi, lo);
          if (hi < 0) asText(slot, vni, t.ipv6At(slot) as string, true);
          else if (changed) {
            const a = out.room(8);
            a[out.n] = NEIGH6_SET;
            a[out.n + 1] = vni;
            copyIpv6(w, slot * 4, a, out.n + 2);
            a[out.n + 6] = hi;
            a[out.n + 7] = lo;
            out.n += 8;
          }
        }
      } else if (kind6 !== 0) {
        const ip = t.ipv6At(slot) as string;
        if (ip) asText(slot, vni, ip, false);
      }
    }

  // FDB entries to remove. A lazy VNI's remote entries are the miss handler's.
  const ft = mf.packed;
  for (let e = 0; e < ft.end; e++) {
    if (!ft.live(e) || keptFdb[e] === 1) continue;
    const vni = ft.word(e, 0);
    if (gone(vni)) continue;
    const was = ft.value(e);
    if (lazy && !mf.dst(was).startsWith('@')) continue;
    const a = out.room(5);
    a[out.n] = FDB_DEL;
    a[out.n + 1] = vni;
    a[out.n + 2] = ft.word(e, 1);
    a[out.n + 3] = ft.word(e, 2);
    a[out.n + 4] = was;
    out.n += 5;
  }
  for (const [key, was] of mf.odd) {
    const [vni, mac] = splitKey(key);
    if (gone(vni) || oddFdb.has(key) || (lazy && !was.startsWith('@'))) continue;
    out.step({ op: 'fdb.del', vni, mac, was });
  }

  // Neighbour entries to remove (none on lazy VNIs).
  if (!lazy) {
    for (const [tbl, kept, kind] of [
      [mn.v4, kept4, NEIGH4_DEL],
      [mn.v6, kept6, NEIGH6_DEL],
    ] as const) {
      const w = tbl.width;
      for (let e = 0; e < tbl.end; e++) {
        if (!tbl.live(e) || kept[e] === 1) continue;
        const vni = tbl.word(e, 0);
        if (gone(vni)) continue;
        const a = out.room(1 + w);
        a[out.n++] = kind;
        for (let j = 0; j < w; j++) a[out.n++] = tbl.word(e, j);
      }
    }
    for (const key of mn.odd.keys()) {
      const [vni, ip] = splitKey(key);
      if (gone(vni) || wantsNeigh(vni, ip)) continue;
      out.step({ op: 'neigh.del', vni, ip });
    }
  }

  return new PackedPlan(d.head, out.done(), d.tail, d.waiting, m, want.refused);

  /** Whether a neighbour entry given as text is desired (its key may pack where its MAC did not). */
  function wantsNeigh(vni: number, ip: string): boolean {
    if (packableVni(vni)) {
      const a = packIpv4(ip);
      if (a >= 0) {
        k4[0] = vni;
        k4[1] = a;
        return v4Idx.find() >= 0;
      }
      if (packIpv6(ip, k6, 1)) {
        k6[0] = vni;
        return v6Idx.find() >= 0;
      }
    }
    return oddNeigh.has(neighKey(vni, ip));
  }
}

/** plan() on the model's content as a KernelState: for states the packed planner does not take (never made by the server). */
function referencePlan(s: AgentState, o: DesiredOptions, m: KernelModel): PackedPlan {
  const want = desiredKernel(s, o);
  const p = plan(want, m.toKernelState());
  return new PackedPlan(p.ops, null, [], p.waiting, m, want.refused);
}
