// An open-addressing hash table of fixed-width records in one Uint32Array:
// 3 key words then 3 value words per slot, linear probing, no objects per
// entry. At a million entries a lookup is one cache line instead of a walk
// through Map buckets, boxed keys and value objects, and the GC has nothing
// to trace. Key word 0 must be 1..0xfffffffe (a VNI is 1..2^24-1): 0 marks an
// empty slot and 0xffffffff a deleted one.
import { invalid } from '../model/errors.js';

const STRIDE = 6;
const EMPTY = 0;
const GONE = 0xffffffff;

function hash(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ b, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ c, 0x27d4eb2d);
  return (h ^ (h >>> 15)) >>> 0;
}

export class FlatTable {
  private w: Uint32Array;
  private mask: number;
  private used = 0;
  /** Live entries plus tombstones: what decides when to grow. */
  private filled = 0;

  constructor(capacity = 1024) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.w = new Uint32Array(cap * STRIDE);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.used;
  }

  /** The slot holding this key, or -1. Read its values with value(). */
  find(a: number, b: number, c: number): number {
    const w = this.w;
    let i = hash(a, b, c) & this.mask;
    for (;;) {
      const o = i * STRIDE;
      const k = w[o] as number;
      if (k === EMPTY) return -1;
      if (k === a && w[o + 1] === b && w[o + 2] === c) return i;
      i = (i + 1) & this.mask;
    }
  }

  /** Value word `n` (0..2) of a slot find() returned. */
  value(slot: number, n: number): number {
    return this.w[slot * STRIDE + 3 + n] as number;
  }

  set(a: number, b: number, c: number, v0: number, v1 = 0, v2 = 0): void {
    if (a === EMPTY || a === GONE) throw invalid('key word 0', a, 'must be 1..0xfffffffe');
    if ((this.filled + 1) * 2 > this.mask + 1) this.grow();
    const w = this.w;
    let i = hash(a, b, c) & this.mask;
    let free = -1;
    for (;;) {
      const o = i * STRIDE;
      const k = w[o] as number;
      if (k === EMPTY) break;
      if (k === GONE) {
        if (free < 0) free = i;
      } else if (k === a && w[o + 1] === b && w[o + 2] === c) {
        w[o + 3] = v0;
        w[o + 4] = v1;
        w[o + 5] = v2;
        return;
      }
      i = (i + 1) & this.mask;
    }
    if (free >= 0) i = free;
    else this.filled++;
    const o = i * STRIDE;
    w[o] = a;
    w[o + 1] = b;
    w[o + 2] = c;
    w[o + 3] = v0;
    w[o + 4] = v1;
    w[o + 5] = v2;
    this.used++;
  }

  /** Removes the key if present; returns whether it was. */
  delete(a: number, b: number, c: number): boolean {
    const slot = this.find(a, b, c);
    if (slot < 0) return false;
    this.w[slot * STRIDE] = GONE;
    this.used--;
    return true;
  }

  private grow(): void {
    const old = this.w;
    const cap = (this.mask + 1) * (this.used * 4 > this.mask + 1 ? 2 : 1);
    this.w = new Uint32Array(cap * STRIDE);
    this.mask = cap - 1;
    this.used = 0;
    this.filled = 0;
    for (let o = 0; o < old.length; o += STRIDE) {
      const k = old[o] as number;
      if (k !== EMPTY && k !== GONE) this.set(k, old[o + 1] as number, old[o + 2] as number, old[o + 3] as number, old[o + 4] as number, old[o + 5] as number);
    }
  }
}
