// A hash table keyed by a fixed number of uint32 words, with a fixed number
// of uint32 words as each entry's value, all in typed arrays: 4 bytes a word
// plus 9 an entry, where a Map with a string key costs some 80. For tables
// with an entry per port or kernel object (100k and more on one host).

/**
 * Entries keep their insertion order, and an update keeps its place, as in a
 * Map. Removing an entry leaves a hole (skipped by `live`) until the table
 * next grows, so entry numbers stay valid while a loop removes entries.
 * Keys are passed through the `key` scratch array: write the words, then
 * call `find`, `get`, `set` or `delete`.
 */
export class PackedTable {
  /** Scratch key, `width` words: fill it before find/get/set/delete. */
  readonly key: Uint32Array;
  /** Live entries. */
  size = 0;
  /** Entries in use, live or holes: loop `0 <= e < end` and skip `!live(e)`. */
  end = 0;
  private words: Uint32Array;
  private vals: Uint32Array;
  private alive: Uint8Array;
  private buckets: Int32Array;
  private mask: number;

  constructor(
    readonly width: number,
    /** Value words an entry: 1 or 2. */
    readonly valueWidth: number,
    capacity = 16,
  ) {
    this.key = new Uint32Array(width);
    const cap = Math.max(4, capacity);
    this.words = new Uint32Array(cap * width);
    this.vals = new Uint32Array(cap * valueWidth);
    this.alive = new Uint8Array(cap);
    this.buckets = new Int32Array(bucketsFor(cap));
    this.mask = this.buckets.length - 1;
  }

  live(e: number): boolean {
    return this.alive[e] === 1;
  }

  /** Word `j` of entry `e`'s key. */
  word(e: number, j: number): number {
    return this.words[e * this.width + j] as number;
  }

  /** Word `j` of entry `e`'s value. */
  value(e: number, j = 0): number {
    return this.vals[e * this.valueWidth + j] as number;
  }

  /** The entry holding the scratch key, or -1. */
  find(): number {
    const w = this.width;
    const k = this.key;
    let b = this.hashKey() & this.mask;
    for (;;) {
      const e = (this.buckets[b] as number) - 1;
      if (e < 0) return -1;
      let same = true;
      const at = e * w;
      for (let j = 0; j < w; j++)
        if (this.words[at + j] !== k[j]) {
          same = false;
          break;
        }
      if (same) return e;
      b = (b + 1) & this.mask;
    }
  }

  /** Sets the scratch key's value (words `v0`, `v1`); returns its entry. */
  set(v0: number, v1 = 0): number {
    let e = this.find();
    if (e < 0) {
      if (this.end === this.alive.length) this.makeRoom();
      e = this.end++;
      for (let j = 0, at = e * this.width; j < this.width; j++) this.words[at + j] = this.key[j] as number;
      this.alive[e] = 1;
      this.size++;
      let b = this.hashKey() & this.mask;
      while (this.buckets[b] !== 0) b = (b + 1) & this.mask;
      this.buckets[b] = e + 1;
    }
    this.vals[e * this.valueWidth] = v0;
    if (this.valueWidth > 1) this.vals[e * this.valueWidth + 1] = v1;
    return e;
  }

  /** Removes the scratch key; false when it was not there. */
  delete(): boolean {
    const e = this.find();
    if (e < 0) return false;
    this.deleteAt(e);
    return true;
  }

  /** Removes entry `e` (a live one). Its key words stay readable. */
  deleteAt(e: number): void {
    if (this.alive[e] !== 1) return;
    let b = this.hashAt(e) & this.mask;
    while (this.buckets[b] !== e + 1) b = (b + 1) & this.mask;
    // Backward-shift deletion: no tombstones in the buckets.
    let hole = b;
    let j = b;
    for (;;) {
      j = (j + 1) & this.mask;
      const o = (this.buckets[j] as number) - 1;
      if (o < 0) break;
      const home = this.hashAt(o) & this.mask;
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      this.buckets[hole] = o + 1;
      hole = j;
    }
    this.buckets[hole] = 0;
    this.alive[e] = 0;
    this.size--;
  }

  clear(): void {
    this.alive.fill(0, 0, this.end);
    this.buckets.fill(0);
    this.size = 0;
    this.end = 0;
  }

  /** Drops the holes (renumbering entries, order kept), growing if still full. */
  private makeRoom(): void {
    const cap = this.alive.length;
    const w = this.width;
    const vw = this.valueWidth;
    let to = 0;
    if (this.size <= (cap * 3) / 4) {
      for (let e = 0; e < this.end; e++) {
        if (this.alive[e] !== 1) continue;
        if (to !== e) {
          this.words.copyWithin(to * w, e * w, (e + 1) * w);
          this.vals.copyWithin(to * vw, e * vw, (e + 1) * vw);
        }
        to++;
      }
      this.alive.fill(1, 0, to);
      this.alive.fill(0, to, this.end);
      this.end = to;
      this.rehash(cap);
      return;
    }
    const next = cap * 2;
    const words = new Uint32Array(next * w);
    const vals = new Uint32Array(next * vw);
    const alive = new Uint8Array(next);
    for (let e = 0; e < this.end; e++) {
      if (this.alive[e] !== 1) continue;
      words.set(this.words.subarray(e * w, (e + 1) * w), to * w);
      vals.set(this.vals.subarray(e * vw, (e + 1) * vw), to * vw);
      alive[to] = 1;
      to++;
    }
    this.words = words;
    this.vals = vals;
    this.alive = alive;
    this.end = to;
    this.rehash(next);
  }

  private rehash(cap: number): void {
    const n = bucketsFor(cap);
    if (this.buckets.length === n) this.buckets.fill(0);
    else this.buckets = new Int32Array(n);
    this.mask = n - 1;
    for (let e = 0; e < this.end; e++) {
      let b = this.hashAt(e) & this.mask;
      while (this.buckets[b] !== 0) b = (b + 1) & this.mask;
      this.buckets[b] = e + 1;
    }
  }

  private hashKey(): number {
    return mix(this.key, 0, this.width);
  }

  private hashAt(e: number): number {
    return mix(this.words, e * this.width, this.width);
  }
}

/** Twice the entries, a power of two: linear probing stays short below half full. */
function bucketsFor(cap: number): number {
  let n = 8;
  while (n < cap * 2) n *= 2;
  return n;
}

function mix(a: Uint32Array, at: number, n: number): number {
  let h = 0x811c9dc5 ^ n;
  for (let j = 0; j < n; j++) {
    h = Math.imul(h ^ (a[at + j] as number), 0x5bd1e995);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A hash index over the rows of a columnar table, keyed by words derived
 * from each row (`keyOf`), so the keys are not stored twice: 8 bytes a row.
 * Adding a row whose key is already there replaces it: the last one wins, as
 * with Map.set. The index is valid until the table's rows change.
 */
export abstract class RowIndex {
  /** Scratch key for `find`. */
  readonly key: Uint32Array;
  private readonly probe: Uint32Array;
  private buckets = new Int32Array(8);
  private mask = 7;

  constructor(readonly width: number) {
    this.key = new Uint32Array(width);
    this.probe = new Uint32Array(width);
  }

  /** Writes the key words of `row` to `out`. */
  protected abstract keyOf(row: number, out: Uint32Array): void;

  /** Empties the index, sized for up to `rows` rows (the buckets are kept when big enough). */
  reset(rows: number): void {
    const n = bucketsFor(rows);
    if (this.buckets.length < n || this.buckets.length > 4 * n) this.buckets = new Int32Array(n);
    else this.buckets.fill(0);
    this.mask = this.buckets.length - 1;
  }

  /**
   * Indexes `row` under its key, replacing a row with the same key (then
   * returns true). Call at most `rows` times after `reset`.
   */
  add(row: number): boolean {
    this.keyOf(row, this.key);
    const b = this.slot();
    const had = this.buckets[b] !== 0;
    this.buckets[b] = row + 1;
    return had;
  }

  /** The row indexed under the scratch key, or -1. */
  find(): number {
    return (this.buckets[this.slot()] as number) - 1;
  }

  /** Drops `row` from the index (if it is the row under its key). */
  remove(row: number): void {
    this.keyOf(row, this.key);
    let hole = this.slot();
    if (this.buckets[hole] !== row + 1) return;
    // Backward-shift deletion, as in PackedTable.
    let j = hole;
    for (;;) {
      j = (j + 1) & this.mask;
      const o = (this.buckets[j] as number) - 1;
      if (o < 0) break;
      this.keyOf(o, this.probe);
      const home = mix(this.probe, 0, this.width) & this.mask;
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      this.buckets[hole] = o + 1;
      hole = j;
    }
    this.buckets[hole] = 0;
  }

  /** Rows the buckets hold at most (half of them). */
  get capacity(): number {
    return this.buckets.length / 2;
  }

  /** The bucket holding the scratch key, or the empty one where it would go. */
  private slot(): number {
    const w = this.width;
    let b = mix(this.key, 0, w) & this.mask;
    for (;;) {
      const row = (this.buckets[b] as number) - 1;
      if (row < 0) return b;
      this.keyOf(row, this.probe);
      let same = true;
      for (let j = 0; j < w; j++)
        if (this.probe[j] !== this.key[j]) {
          same = false;
          break;
        }
      if (same) return b;
      b = (b + 1) & this.mask;
    }
  }
}
