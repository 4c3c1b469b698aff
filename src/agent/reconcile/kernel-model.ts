// The agent's model of what its kernel holds, packed: FDB and neighbour
// entries in PackedTables (a remote port's three entries cost some 110 bytes
// instead of 280 as `vni|addr` string Maps). Steps are applied to it with
// dataplane/kernel-state.ts's applyStep, so it follows exactly what
// KernelState would.

import { Interner } from '../../model/interner.js';
import { packIpv4, packIpv6, packMac, unpackIpv4, unpackIpv6, unpackMac } from '../../model/packed-addr.js';
import { PackedTable } from '../../model/packed-table.js';
import { fdbKey, type KernelEntries, type KernelState, neighKey, type Op, type PlugState, splitKey, type VniState } from '../dataplane/dataplane.js';
import { applyStep } from '../dataplane/kernel-state.js';

const TWO24 = 0x1000000;

/** A VNI that fits a key word. */
export const packableVni = (vni: number): boolean => Number.isInteger(vni) && vni >= 0 && vni <= 0xffffffff;

/** The packed MAC (`packMac`) of its high and low 24 bits. */
export const macOfWords = (hi: number, lo: number): number => hi * TWO24 + lo;

/** Splits a packed MAC into `out[at]` (bits 47..24) and `out[at + 1]` (23..0). */
function macWords(mac: number, out: Uint32Array, at: number): void {
  const hi = Math.floor(mac / TWO24);
  out[at] = hi;
  out[at + 1] = mac - hi * TWO24;
}

/**
 * FDB entries: `vni|mac` -> the remote VTEP, `@ifname` or `?` (as in
 * KernelState). Destinations are kept once each and referred to by number.
 */
export class FdbEntries {
  /** [vni, mac hi, mac lo] -> destination number. */
  readonly packed = new PackedTable(3, 1, 1024);
  /** Entries whose key does not pack, by `fdbKey`. */
  readonly odd = new Map<string, string>();
  private readonly dsts = new Interner();

  get size(): number {
    return this.packed.size + this.odd.size;
  }

  /** The number of a destination (numbers are kept for the model's life). */
  dstId(dst: string): number {
    return this.dsts.id(dst);
  }

  dst(id: number): string {
    return this.dsts.text(id);
  }

  /** Fills the scratch key for (vni, mac); false when they do not pack. */
  private key(vni: number, mac: string): boolean {
    const m = packMac(mac);
    if (m < 0 || !packableVni(vni)) return false;
    this.packed.key[0] = vni;
    macWords(m, this.packed.key, 1);
    return true;
  }

  get(vni: number, mac: string): string | undefined {
    if (!this.key(vni, mac)) return this.odd.get(fdbKey(vni, mac));
    const e = this.packed.find();
    return e < 0 ? undefined : this.dst(this.packed.value(e));
  }

  set(vni: number, mac: string, dst: string): void {
    if (this.key(vni, mac)) this.packed.set(this.dstId(dst));
    else this.odd.set(fdbKey(vni, mac), dst);
  }

  delete(vni: number, mac: string): void {
    if (this.key(vni, mac)) this.packed.delete();
    else this.odd.delete(fdbKey(vni, mac));
  }

  dropVni(vni: number): void {
    const t = this.packed;
    for (let e = 0; e < t.end; e++) if (t.live(e) && t.word(e, 0) === vni) t.deleteAt(e);
    const prefix = `${vni}|`;
    for (const k of this.odd.keys()) if (k.startsWith(prefix)) this.odd.delete(k);
  }

  /** Every entry as KernelState keys it (tests, tools). */
  *entries(): Generator<[string, string]> {
    const t = this.packed;
    for (let e = 0; e < t.end; e++) if (t.live(e)) yield [fdbKey(t.word(e, 0), unpackMac(macOfWords(t.word(e, 1), t.word(e, 2)))), this.dst(t.value(e))];
    yield* this.odd;
  }
}

/**
 * Neighbour entries: `vni|ip` -> mac. IPv4 and IPv6 keys in a table each;
 * an entry whose key or MAC does not pack is kept as text.
 */
export class NeighEntries {
  /** [vni, ipv4] -> [mac hi, mac lo]. */
  readonly v4 = new PackedTable(2, 2, 1024);
  /** [vni, ipv6 words 0..3] -> [mac hi, mac lo]. */
  readonly v6 = new PackedTable(5, 2, 1024);
  /** Entries whose key or MAC does not pack, by `neighKey`. */
  readonly odd = new Map<string, string>();

  get size(): number {
    return this.v4.size + this.v6.size + this.odd.size;
  }

  /** The table whose scratch key now holds (vni, ip), or null when they do not pack. */
  private table(vni: number, ip: string): PackedTable | null {
    if (!packableVni(vni)) return null;
    const a = packIpv4(ip);
    if (a >= 0) {
      this.v4.key[0] = vni;
      this.v4.key[1] = a;
      return this.v4;
    }
    if (!packIpv6(ip, this.v6.key, 1)) return null;
    this.v6.key[0] = vni;
    return this.v6;
  }

  get(vni: number, ip: string): string | undefined {
    const t = this.table(vni, ip);
    const e = t ? t.find() : -1;
    if (t && e >= 0) return unpackMac(macOfWords(t.value(e, 0), t.value(e, 1)));
    return this.odd.size > 0 ? this.odd.get(neighKey(vni, ip)) : undefined;
  }

  set(vni: number, ip: string, mac: string): void {
    const t = this.table(vni, ip);
    const m = packMac(mac);
    if (t && m >= 0) {
      const hi = Math.floor(m / TWO24);
      t.set(hi, m - hi * TWO24);
      if (this.odd.size > 0) this.odd.delete(neighKey(vni, ip));
      return;
    }
    t?.delete();
    this.odd.set(neighKey(vni, ip), mac);
  }

  delete(vni: number, ip: string): void {
    this.table(vni, ip)?.delete();
    if (this.odd.size > 0) this.odd.delete(neighKey(vni, ip));
  }

  dropVni(vni: number): void {
    for (const t of [this.v4, this.v6]) for (let e = 0; e < t.end; e++) if (t.live(e) && t.word(e, 0) === vni) t.deleteAt(e);
    const prefix = `${vni}|`;
    for (const k of this.odd.keys()) if (k.startsWith(prefix)) this.odd.delete(k);
  }
}

/**
 * What the agent believes its kernel holds, kept up to date by its own
 * applies (docs/dataplane.md, "Reconcile"): the same content as a
 * KernelState, in a fraction of the memory.
 */
export class KernelModel implements KernelEntries {
  vnis = new Map<number, VniState>();
  plugs = new Map<string, PlugState>();
  guards = new Map<string, string>();
  /** Host-side port interfaces that exist (observed). */
  links = new Set<string>();
  readonly fdb = new FdbEntries();
  readonly neigh = new NeighEntries();

  /** The model of an observed kernel. */
  static from(s: KernelState): KernelModel {
    const m = new KernelModel();
    m.vnis = s.vnis;
    m.plugs = s.plugs;
    m.guards = s.guards;
    m.links = s.links;
    for (const [k, dst] of s.fdb) {
      const [vni, mac] = splitKey(k);
      m.fdb.set(vni, mac, dst);
    }
    for (const [k, mac] of s.neigh) {
      const [vni, ip] = splitKey(k);
      m.neigh.set(vni, ip, mac);
    }
    return m;
  }

  /** The same content as a KernelState (tests, and the reference planner). */
  toKernelState(): KernelState {
    const neigh = new Map<string, string>();
    for (const t of [this.neigh.v4, this.neigh.v6])
      for (let e = 0; e < t.end; e++) {
        if (!t.live(e)) continue;
        const ip = t.width === 2 ? unpackIpv4(t.word(e, 1)) : unpackIpv6(Uint32Array.of(t.word(e, 1), t.word(e, 2), t.word(e, 3), t.word(e, 4)), 0);
        neigh.set(neighKey(t.word(e, 0), ip), unpackMac(macOfWords(t.value(e, 0), t.value(e, 1))));
      }
    for (const [k, v] of this.neigh.odd) neigh.set(k, v);
    const c = <K, V>(m: Map<K, V>) => new Map(m);
    return { vnis: c(this.vnis), plugs: c(this.plugs), guards: c(this.guards), fdb: new Map(this.fdb.entries()), neigh, links: new Set(this.links) };
  }

  /** Records a step that succeeded (kernel-state.ts's applyStep). */
  apply(op: Op): void {
    applyStep(this, op);
  }

  fdbGet(vni: number, mac: string): string | undefined {
    return this.fdb.get(vni, mac);
  }
  fdbSet(vni: number, mac: string, dst: string): void {
    this.fdb.set(vni, mac, dst);
  }
  fdbDelete(vni: number, mac: string): void {
    this.fdb.delete(vni, mac);
  }
  neighSet(vni: number, ip: string, mac: string): void {
    this.neigh.set(vni, ip, mac);
  }
  neighDelete(vni: number, ip: string): void {
    this.neigh.delete(vni, ip);
  }
  dropEntries(vni: number): void {
    this.fdb.dropVni(vni);
    this.neigh.dropVni(vni);
  }
}
