// The ports an agent holds (its own and every port on its VNIs: 100k and
// more), in columns rather than one object and seven strings each: ids,
// MACs and addresses packed into typed arrays, the fields a port shares
// with its network and its host kept once. Reads as a Map of PortMapping.
import type { PortMapping } from '../../model/changes.js';
import { WeftError } from '../../model/errors.js';
import { packIpv4, packIpv6, packMac, unpackIpv4, unpackIpv6, unpackMac } from '../../model/packed-addr.js';
import { ID_TEXT, type IdKind, packId, unpackId } from '../../model/packed-id.js';
import { RowIndex } from '../../model/packed-table.js';

const LIVE = 1;
const HAS_VNI = 2;
const HAS_V4 = 4;
const HAS_V6 = 8;
/** Some field did not pack (an id or text not in canonical form, a VNI beyond int32): it is in `odd`. */
const ODD = 16;
const TWO24 = 0x1000000;

interface NetRef {
  tenantId: string;
  networkId: string;
  networkKind: PortMapping['networkKind'];
}
export interface HostRef {
  hostId: string;
  underlayIp: string;
}
interface OddFields {
  portId?: string;
  instanceId?: string;
  vni?: number;
  mac?: string;
  ipv4?: string;
  ipv6?: string;
}

/** The per-slot columns, grown together. */
class Columns {
  readonly flags: Uint8Array;
  /** Port id kind (bits 0-1), instance id kind (bits 2-3). */
  readonly idKinds: Uint8Array;
  readonly portIds: Uint32Array;
  readonly instanceIds: Uint32Array;
  readonly vnis: Int32Array;
  /** MAC bits 47..24 and 23..0 (`packMac`); -1: the MAC did not pack. */
  readonly macHi: Int32Array;
  readonly macLo: Int32Array;
  readonly v4s: Uint32Array;
  readonly v6s: Uint32Array;
  readonly nets: Int32Array;
  readonly hostRefs: Int32Array;

  constructor(readonly cap: number) {
    this.flags = new Uint8Array(cap);
    this.idKinds = new Uint8Array(cap);
    this.portIds = new Uint32Array(cap * 4);
    this.instanceIds = new Uint32Array(cap * 4);
    this.vnis = new Int32Array(cap);
    this.macHi = new Int32Array(cap);
    this.macLo = new Int32Array(cap);
    this.v4s = new Uint32Array(cap);
    this.v6s = new Uint32Array(cap * 4);
    this.nets = new Int32Array(cap);
    this.hostRefs = new Int32Array(cap);
  }

  private arrays(): (Uint8Array | Uint32Array | Int32Array)[] {
    return [this.flags, this.idKinds, this.portIds, this.instanceIds, this.vnis, this.macHi, this.macLo, this.v4s, this.v6s, this.nets, this.hostRefs];
  }

  /** Copies slots `from..to-1` to `into`, starting at slot `at`. */
  copy(from: number, to: number, into: Columns, at: number): void {
    const dst = into.arrays();
    this.arrays().forEach((a, i) => {
      const per = a.length / this.cap;
      (dst[i] as typeof a).set(a.subarray(from * per, to * per), at * per);
    });
  }
}

/** Packed port ids -> slot: [id kind, 4 words], read from the columns. */
class IdIndex extends RowIndex {
  constructor(private readonly table: () => Columns) {
    super(5);
  }
  protected keyOf(slot: number, out: Uint32Array): void {
    const c = this.table();
    out[0] = (c.idKinds[slot] as number) & 3;
    for (let j = 0; j < 4; j++) out[1 + j] = c.portIds[slot * 4 + j] as number;
  }
}

/**
 * Ports by id in insertion order, like the Map it replaces (`set` of a
 * known id keeps its place). Slots are the internal rows: `end`, `live`
 * and the column readers are for code that scans every port (the agent's
 * reconcile) without building objects; slots change only in `compact`.
 */
export class PortTable implements ReadonlyMap<string, PortMapping> {
  /** Slots in use, live or holes. */
  end = 0;
  private count = 0;
  private c = new Columns(0);
  private readonly ids = new IdIndex(() => this.c);
  /** Ids that do not pack. */
  private textIds = new Map<string, number>();
  private odd = new Map<number, OddFields>();
  private netList: NetRef[] = [];
  private netIndex = new Map<string, number>();
  private hostList: HostRef[] = [];
  private hostIndex = new Map<string, number>();

  get size(): number {
    return this.count;
  }

  has(portId: string): boolean {
    return this.slotOf(portId) >= 0;
  }

  get(portId: string): PortMapping | undefined {
    const slot = this.slotOf(portId);
    return slot < 0 ? undefined : this.at(slot);
  }

  /** Adds or replaces a port (a replaced one keeps its place); `set(id, port)` as on a Map works too. */
  set(p: PortMapping): this;
  set(portId: string, p: PortMapping): this;
  set(a: PortMapping | string, b?: PortMapping): this {
    const p = typeof a === 'string' ? (b as PortMapping) : a;
    if (typeof a === 'string' && a !== p.portId) throw new WeftError('E_INVALID_ARG', `invalid port key ${a}: must be the port's id ${p.portId}`);
    let slot = this.slotOf(p.portId);
    if (slot < 0) {
      if (this.end === this.c.cap) this.resize(Math.max(64, this.c.cap * 2));
      slot = this.end++;
      this.count++;
      const kind = packId(p.portId, this.c.portIds, slot * 4);
      this.c.idKinds[slot] = kind;
      if (kind === ID_TEXT) {
        this.textIds.set(p.portId, slot);
        this.odd.set(slot, { portId: p.portId });
      } else {
        if (this.count - this.textIds.size > this.ids.capacity) this.reindex(2 * this.c.cap);
        this.ids.add(slot);
      }
    }
    this.write(slot, p);
    return this;
  }

  delete(portId: string): boolean {
    const slot = this.slotOf(portId);
    if (slot < 0) return false;
    this.deleteSlot(slot);
    return true;
  }

  clear(): void {
    this.end = 0;
    this.count = 0;
    this.c = new Columns(0);
    this.ids.reset(0);
    this.textIds = new Map();
    this.odd = new Map();
    this.netList = [];
    this.netIndex = new Map();
    this.hostList = [];
    this.hostIndex = new Map();
  }

  /** Takes over every port of `other`, which is left empty; its own are dropped. */
  adopt(other: PortTable): void {
    ({ end: this.end, count: this.count, c: this.c, textIds: this.textIds, odd: this.odd } = other);
    ({ netList: this.netList, netIndex: this.netIndex, hostList: this.hostList, hostIndex: this.hostIndex } = other);
    other.clear();
    // A snapshot is mostly what the table will hold: no need for the room doubling left.
    const fit = Math.max(64, this.end + (this.end >> 4));
    if (this.c.cap > fit) this.resize(fit);
    this.reindex(this.c.cap);
  }

  // --- scans by slot ------------------------------------------------------

  live(slot: number): boolean {
    return ((this.c.flags[slot] as number) & LIVE) !== 0;
  }

  portIdAt(slot: number): string {
    return this.idAt(slot, 0);
  }

  /** The VNI, or -1 for none (routed networks). */
  vniAt(slot: number): number {
    const f = this.c.flags[slot] as number;
    if ((f & HAS_VNI) === 0) return -1;
    return (f & ODD) !== 0 ? (this.odd.get(slot)?.vni ?? (this.c.vnis[slot] as number)) : (this.c.vnis[slot] as number);
  }

  /** Bits 47..24 of the MAC, or -1 when it did not pack (see `macAt`). */
  macHiAt(slot: number): number {
    return this.c.macHi[slot] as number;
  }

  /** Bits 23..0 of the MAC. */
  macLoAt(slot: number): number {
    return this.c.macLo[slot] as number;
  }

  macAt(slot: number): string {
    const hi = this.c.macHi[slot] as number;
    return hi >= 0 ? unpackMac(hi * TWO24 + (this.c.macLo[slot] as number)) : (this.odd.get(slot)?.mac as string);
  }

  /** 0: no IPv4 address; 1: packed (`ipv4PackedAt`); 2: did not pack (see `ipv4At`). */
  ipv4Kind(slot: number): 0 | 1 | 2 {
    const f = this.c.flags[slot] as number;
    if ((f & HAS_V4) === 0) return 0;
    return (f & ODD) !== 0 && this.odd.get(slot)?.ipv4 !== undefined ? 2 : 1;
  }

  ipv4PackedAt(slot: number): number {
    return this.c.v4s[slot] as number;
  }

  ipv4At(slot: number): string | null {
    const k = this.ipv4Kind(slot);
    return k === 0 ? null : k === 1 ? unpackIpv4(this.c.v4s[slot] as number) : (this.odd.get(slot)?.ipv4 as string);
  }

  /** As `ipv4Kind`; a packed address is the four words at `ipv6Words()[4 * slot]`. */
  ipv6Kind(slot: number): 0 | 1 | 2 {
    const f = this.c.flags[slot] as number;
    if ((f & HAS_V6) === 0) return 0;
    return (f & ODD) !== 0 && this.odd.get(slot)?.ipv6 !== undefined ? 2 : 1;
  }

  ipv6Words(): Uint32Array {
    return this.c.v6s;
  }

  ipv6At(slot: number): string | null {
    const k = this.ipv6Kind(slot);
    return k === 0 ? null : k === 1 ? unpackIpv6(this.c.v6s, slot * 4) : (this.odd.get(slot)?.ipv6 as string);
  }

  /** The port's host and its underlay address, shared by every port of the same pair. */
  hostAt(slot: number): HostRef {
    return this.hostList[this.c.hostRefs[slot] as number] as HostRef;
  }

  /** Every port of host `hostId` takes this underlay address (the host moved on the underlay). */
  rehost(hostId: string, underlayIp: string): void {
    const to = new Map<number, number>();
    this.hostList.forEach((h, i) => {
      if (h.hostId === hostId && h.underlayIp !== underlayIp) to.set(i, this.hostRef(hostId, underlayIp));
    });
    if (to.size === 0) return;
    for (let s = 0; s < this.end; s++) {
      const n = to.get(this.c.hostRefs[s] as number);
      if (n !== undefined && this.live(s)) this.c.hostRefs[s] = n;
    }
  }

  deleteSlot(slot: number): void {
    if (!this.live(slot)) return;
    if (((this.c.idKinds[slot] as number) & 3) === ID_TEXT) this.textIds.delete(this.portIdAt(slot));
    else this.ids.remove(slot);
    this.odd.delete(slot);
    this.c.flags[slot] = 0;
    this.count--;
  }

  /** Drops the holes left by deletions when they outnumber the ports (renumbers slots, keeps the order). */
  compact(): void {
    const holes = this.end - this.count;
    if (holes < 1024 || holes < this.count) return;
    const to = new Columns(Math.max(64, 2 * this.count));
    const odd = new Map<number, OddFields>();
    let n = 0;
    for (let s = 0; s < this.end; ) {
      if (!this.live(s)) {
        s++;
        continue;
      }
      let e = s;
      for (; e < this.end && this.live(e); e++) {
        const o = this.odd.get(e);
        if (o) odd.set(n + e - s, o);
      }
      this.c.copy(s, e, to, n);
      n += e - s;
      s = e;
    }
    this.c = to;
    this.odd = odd;
    this.end = n;
    this.reindex(to.cap);
  }

  /** The port in slot `slot`, as a new object (fields in the stream's order). */
  at(slot: number): PortMapping {
    const n = this.netList[this.c.nets[slot] as number] as NetRef;
    const h = this.hostAt(slot);
    return {
      portId: this.idAt(slot, 0),
      instanceId: this.idAt(slot, 2),
      tenantId: n.tenantId,
      networkId: n.networkId,
      networkKind: n.networkKind,
      vni: ((this.c.flags[slot] as number) & HAS_VNI) !== 0 ? this.vniAt(slot) : null,
      mac: this.macAt(slot),
      ipv4: this.ipv4At(slot),
      ipv6: this.ipv6At(slot),
      hostId: h.hostId,
      underlayIp: h.underlayIp,
    };
  }

  /** The ports of one host, without building the others (a scan of one column). */
  *ofHost(hostId: string): Generator<PortMapping> {
    const refs = new Set<number>();
    this.hostList.forEach((h, i) => {
      if (h.hostId === hostId) refs.add(i);
    });
    if (refs.size === 0) return;
    for (let s = 0; s < this.end; s++) if (refs.has(this.c.hostRefs[s] as number) && this.live(s)) yield this.at(s);
  }

  // --- ReadonlyMap (each value is built when read: a full scan of 100k ports is some 50 ms) --------

  *entries(): MapIterator<[string, PortMapping]> {
    for (let s = 0; s < this.end; s++) if (this.live(s)) yield [this.portIdAt(s), this.at(s)];
  }

  *keys(): MapIterator<string> {
    for (let s = 0; s < this.end; s++) if (this.live(s)) yield this.portIdAt(s);
  }

  *values(): MapIterator<PortMapping> {
    for (let s = 0; s < this.end; s++) if (this.live(s)) yield this.at(s);
  }

  [Symbol.iterator](): MapIterator<[string, PortMapping]> {
    return this.entries();
  }

  forEach(f: (value: PortMapping, key: string, map: ReadonlyMap<string, PortMapping>) => void, thisArg?: unknown): void {
    for (let s = 0; s < this.end; s++) if (this.live(s)) f.call(thisArg, this.at(s), this.portIdAt(s), this);
  }

  // --- internals ----------------------------------------------------------

  private slotOf(portId: string): number {
    const k = this.ids.key;
    const kind = packId(portId, k, 1);
    if (kind === ID_TEXT) return this.textIds.get(portId) ?? -1;
    k[0] = kind;
    return this.ids.find();
  }

  /** The port id (`shift` 0) or instance id (`shift` 2) of a slot. */
  private idAt(slot: number, shift: 0 | 2): string {
    const kind = (((this.c.idKinds[slot] as number) >> shift) & 3) as IdKind;
    if (kind === ID_TEXT) return (shift === 0 ? this.odd.get(slot)?.portId : this.odd.get(slot)?.instanceId) as string;
    return unpackId(kind, shift === 0 ? this.c.portIds : this.c.instanceIds, slot * 4);
  }

  private reindex(cap: number): void {
    this.ids.reset(Math.max(64, cap));
    this.textIds = new Map();
    for (let s = 0; s < this.end; s++) {
      if (!this.live(s)) continue;
      if (((this.c.idKinds[s] as number) & 3) === ID_TEXT) this.textIds.set(this.portIdAt(s), s);
      else this.ids.add(s);
    }
  }

  private write(slot: number, p: PortMapping): void {
    const c = this.c;
    let flags = LIVE;
    // The port id stays (it is the key); the rest is rewritten.
    const keep = this.odd.get(slot)?.portId;
    let odd: OddFields | null = keep === undefined ? null : { portId: keep };
    const ik = packId(p.instanceId, c.instanceIds, slot * 4);
    c.idKinds[slot] = ((c.idKinds[slot] as number) & 3) | (ik << 2);
    if (ik === ID_TEXT) odd = { ...odd, instanceId: p.instanceId };
    if (p.vni !== null) {
      flags |= HAS_VNI;
      c.vnis[slot] = p.vni;
      if (c.vnis[slot] !== p.vni) odd = { ...odd, vni: p.vni };
    }
    const mac = packMac(p.mac);
    const hi = mac < 0 ? -1 : Math.floor(mac / TWO24);
    c.macHi[slot] = hi;
    c.macLo[slot] = mac - hi * TWO24;
    if (mac < 0) odd = { ...odd, mac: p.mac };
    if (p.ipv4 !== null) {
      flags |= HAS_V4;
      const v4 = packIpv4(p.ipv4);
      if (v4 >= 0) c.v4s[slot] = v4;
      else odd = { ...odd, ipv4: p.ipv4 };
    }
    if (p.ipv6 !== null) {
      flags |= HAS_V6;
      if (!packIpv6(p.ipv6, c.v6s, slot * 4)) odd = { ...odd, ipv6: p.ipv6 };
    }
    if (odd) {
      flags |= ODD;
      this.odd.set(slot, odd);
    } else this.odd.delete(slot);
    c.flags[slot] = flags;
    c.nets[slot] = this.netRef(p);
    c.hostRefs[slot] = this.hostRef(p.hostId, p.underlayIp);
  }

  private netRef(p: PortMapping): number {
    const k = `${p.networkKind}\n${p.tenantId}\n${p.networkId}`;
    let i = this.netIndex.get(k);
    if (i === undefined) {
      i = this.netList.length;
      this.netList.push({ tenantId: p.tenantId, networkId: p.networkId, networkKind: p.networkKind });
      this.netIndex.set(k, i);
    }
    return i;
  }

  private hostRef(hostId: string, underlayIp: string): number {
    const k = `${hostId}\n${underlayIp}`;
    let i = this.hostIndex.get(k);
    if (i === undefined) {
      i = this.hostList.length;
      this.hostList.push({ hostId, underlayIp });
      this.hostIndex.set(k, i);
    }
    return i;
  }

  private resize(cap: number): void {
    const c = new Columns(cap);
    this.c.copy(0, this.end, c, 0);
    this.c = c;
  }
}
