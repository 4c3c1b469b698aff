// Canonical address text packed into numbers, for tables that hold an entry
// per port (an agent keeps 100k remote ports): a MAC in one double, IPv4 in
// one uint32, IPv6 in four. Only text that formats back to itself is packed,
// so two different strings never pack to the same number.

const TWO24 = 0x1000000;

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** `02:57:46:00:00:01` (lowercase, colons) as a number below 2^48; -1 for any other text. */
export function packMac(s: string): number {
  if (s.length !== 17) return -1;
  let n = 0;
  for (let i = 0; i < 17; i++) {
    const c = s.charCodeAt(i);
    if (i % 3 === 2) {
      if (c !== 58) return -1;
      continue;
    }
    const d = hexDigit(c);
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const h = (x: number, shift: number) => HEX2[(x >>> shift) & 255] as string;

export function unpackMac(n: number): string {
  const hi = Math.floor(n / TWO24);
  const lo = n - hi * TWO24;
  return `${h(hi, 16)}:${h(hi, 8)}:${h(hi, 0)}:${h(lo, 16)}:${h(lo, 8)}:${h(lo, 0)}`;
}

/** A dotted quad without leading zeros as an unsigned 32-bit number; -1 for any other text. */
export function packIpv4(s: string): number {
  const len = s.length;
  if (len < 7 || len > 15) return -1;
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i <= len; i++) {
    const c = i < len ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || octet > 255) return -1;
      n = n * 256 + octet;
      if (i < len && ++dots > 3) return -1;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // "01" is not canonical.
      if (digits === 1 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3) return -1;
    } else return -1;
  }
  return dots === 3 ? n : -1;
}

export function unpackIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const groups = new Uint16Array(8);

/**
 * Writes an IPv6 address in its canonical text (RFC 5952: lowercase, no
 * leading zeros, the longest run of two or more zero groups as `::`) to
 * `out[at..at+3]` and returns true; returns false, writing nothing, for
 * any other text (other spellings, embedded IPv4, zone ids).
 */
export function packIpv6(s: string, out: Uint32Array, at: number): boolean {
  const len = s.length;
  if (len < 2 || len > 39) return false;
  let n = 0;
  let gap = -1;
  let value = 0;
  let digits = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) {
      if (i + 1 < len && s.charCodeAt(i + 1) === 58) {
        if (gap >= 0) return false;
        if (digits > 0) {
          if (n === 8) return false;
          groups[n++] = value;
        } else if (i !== 0) return false;
        gap = n;
        i++;
        value = 0;
        digits = 0;
        continue;
      }
      if (digits === 0 || n === 8) return false;
      groups[n++] = value;
      value = 0;
      digits = 0;
    } else {
      const d = hexDigit(c);
      if (d < 0 || ++digits > 4) return false;
      value = value * 16 + d;
    }
  }
  if (digits > 0) {
    if (n === 8) return false;
    groups[n++] = value;
  } else if (gap !== n) return false;
  if (gap >= 0) {
    const move = n - gap;
    const fill = 8 - n;
    if (fill < 1) return false;
    for (let k = move - 1; k >= 0; k--) groups[gap + fill + k] = groups[gap + k] as number;
    for (let k = 0; k < fill; k++) groups[gap + k] = 0;
  } else if (n !== 8) return false;
  const w0 = (((groups[0] as number) << 16) | (groups[1] as number)) >>> 0;
  const w1 = (((groups[2] as number) << 16) | (groups[3] as number)) >>> 0;
  const w2 = (((groups[4] as number) << 16) | (groups[5] as number)) >>> 0;
  const w3 = (((groups[6] as number) << 16) | (groups[7] as number)) >>> 0;
  if (formatIpv6(w0, w1, w2, w3) !== s) return false;
  out[at] = w0;
  out[at + 1] = w1;
  out[at + 2] = w2;
  out[at + 3] = w3;
  return true;
}

export function unpackIpv6(w: Uint32Array, at: number): string {
  return formatIpv6(w[at] as number, w[at + 1] as number, w[at + 2] as number, w[at + 3] as number);
}

const groups6: number[] = [0, 0, 0, 0, 0, 0, 0, 0];

function formatIpv6(w0: number, w1: number, w2: number, w3: number): string {
  const g = groups6;
  g[0] = w0 >>> 16;
  g[1] = w0 & 0xffff;
  g[2] = w1 >>> 16;
  g[3] = w1 & 0xffff;
  g[4] = w2 >>> 16;
  g[5] = w2 & 0xffff;
  g[6] = w3 >>> 16;
  g[7] = w3 & 0xffff;
  // The longest run of two or more zero groups (the first of equal ones) becomes `::`.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += (g[i] as number).toString(16);
  }
  return out;
}
