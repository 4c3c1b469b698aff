// Ids packed into four uint32 words, for tables with an entry per port: a
// lowercase UUID (every id weft makes) as its 128 bits, a short ASCII id
// (tests, benchmarks, imports) as its bytes. 16 bytes instead of a 56-byte
// string; any other id is kept as text by the caller.

/** How an id is packed: not (kept as text), as a UUID, as up to 15 ASCII characters. */
export type IdKind = 0 | 1 | 2;
export const ID_TEXT = 0;
export const ID_UUID = 1;
export const ID_SHORT = 2;

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Packs `id` into `out[at..at+3]` and says how; ID_TEXT (nothing written) when it packs neither way. */
export function packId(id: string, out: Uint32Array, at: number): IdKind {
  if (id.length === 36 && uuid(id, out, at)) return ID_UUID;
  if (id.length === 0 || id.length > 15) return ID_TEXT;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 1 || c > 127) return ID_TEXT;
  }
  const byte = (i: number) => (i === 0 ? id.length : i <= id.length ? id.charCodeAt(i - 1) : 0);
  for (let w = 0; w < 4; w++) out[at + w] = (byte(4 * w) | (byte(4 * w + 1) << 8) | (byte(4 * w + 2) << 16) | (byte(4 * w + 3) << 24)) >>> 0;
  return ID_SHORT;
}

function uuid(id: string, out: Uint32Array, at: number): boolean {
  const words = [0, 0, 0, 0];
  let n = 0;
  for (let i = 0; i < 36; i++) {
    const c = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
      continue;
    }
    const d = hexDigit(c);
    if (d < 0) return false;
    const w = n >> 3;
    words[w] = (words[w] as number) * 16 + d;
    n++;
  }
  for (let w = 0; w < 4; w++) out[at + w] = words[w] as number;
  return true;
}

const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const h = (x: number, shift: number) => HEX2[(x >>> shift) & 255] as string;

/** The id packed at `w[at..at+3]` as `kind` (not ID_TEXT). */
export function unpackId(kind: IdKind, w: Uint32Array, at: number): string {
  if (kind === ID_UUID) {
    const x0 = w[at] as number;
    const x1 = w[at + 1] as number;
    const x2 = w[at + 2] as number;
    const x3 = w[at + 3] as number;
    return (
      h(x0, 24) +
      h(x0, 16) +
      h(x0, 8) +
      h(x0, 0) +
      '-' +
      h(x1, 24) +
      h(x1, 16) +
      '-' +
      h(x1, 8) +
      h(x1, 0) +
      '-' +
      h(x2, 24) +
      h(x2, 16) +
      '-' +
      h(x2, 8) +
      h(x2, 0) +
      h(x3, 24) +
      h(x3, 16) +
      h(x3, 8) +
      h(x3, 0)
    );
  }
  const len = (w[at] as number) & 0xff;
  const codes: number[] = [];
  for (let i = 1; i <= len; i++) codes.push(((w[at + (i >> 2)] as number) >>> (8 * (i & 3))) & 0xff);
  return String.fromCharCode.apply(null, codes);
}
