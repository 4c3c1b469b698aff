// Address arithmetic for IPv4, IPv6 and MACs as bigints: parsing, CIDR
// containment and overlap, and the fixed-width keys the allocator stores.
import ipaddr from 'ipaddr.js';
import { invalid } from './errors.js';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address (host bits zero). */
  base: bigint;
  prefix: number;
  /** Canonical text, e.g. `10.0.0.0/24`, `2001:db8::/64`. */
  text: string;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function bitsOf(family: Family): number {
  return BITS[family];
}

/**
 * Parses an IPv4 or IPv6 address (no prefix). IPv4-mapped IPv6 stays IPv6.
 * A zone id (`fe80::1%eth0`) is refused, not dropped: it means nothing to a
 * control plane, and trimming it would store something else than was sent.
 */
export function parseIp(field: string, value: unknown): { family: Family; n: bigint; text: string } {
  if (typeof value === 'string' && value.includes('%')) {
    throw invalid(field, value, 'must be an IPv4 or IPv6 address without a zone id (%...)');
  }
  if (typeof value !== 'string' || value.includes('/')) throw invalid(field, value, 'must be an IPv4 or IPv6 address');
  // Parsed once (this is on the index's load path: a million ports, two addresses each).
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = ipaddr.parse(value);
  } catch {
    throw invalid(field, value, 'must be an IPv4 or IPv6 address');
  }
  const family: Family = a.kind() === 'ipv4' ? 4 : 6;
  // ipaddr.parse accepts odd IPv4 forms ("1", "0x1"); insist on dotted quads.
  if (family === 4 && !ipaddr.IPv4.isValidFourPartDecimal(value)) {
    throw invalid(field, value, 'must be an IPv4 address in dotted-quad form');
  }
  // toString is the canonical form formatIp gives (dotted quad, RFC 5952).
  return { family, n: bytesToBigint(a.toByteArray()), text: a.toString() };
}

/**
 * An IPv4 address in dotted-quad form as a number, or null for anything
 * else (IPv6, or not an address: parseIp then says why). The fast path of
 * hot loops (the mapping index loads a million ports): no BigInt, no text.
 */
export function ipv4Number(value: string): number | null {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return null;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // No leading zeros ("01"), as isValidFourPartDecimal.
      if (digits === 1 && part === 0) return null;
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return null;
    } else return null;
  }
  if (dots !== 3 || digits === 0) return null;
  return n * 256 + part;
}

/**
 * An IPv6 address of hex groups (and at most one `::`) as its 16 bytes, one
 * per character (latin1), or null for anything else: IPv4, an embedded
 * IPv4 (`::ffff:1.2.3.4`), a zone id, a form it is unsure of (a `::` that
 * stands for no group), or not an address (parseIp then decides and says
 * why). The fast path of hot loops, as ipv4Number: no BigInt, no text.
 */
export function ipv6Key(value: string): string | null {
  const len = value.length;
  if (len < 2 || len > 39) return null;
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  if (value.charCodeAt(0) === 58) {
    // A leading colon only as `::`.
    if (value.charCodeAt(1) !== 58) return null;
    gap = 0;
    i = 2;
    if (i === len) return '\0'.repeat(16);
  }
  for (;;) {
    let g = 0;
    let digits = 0;
    while (i < len) {
      const c = value.charCodeAt(i);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      if (++digits > 4) return null;
      g = g * 16 + d;
      i++;
    }
    if (digits === 0) return null;
    groups.push(g);
    if (groups.length > 8) return null;
    if (i === len) break;
    if (value.charCodeAt(i) !== 58) return null;
    i++;
    if (i < len && value.charCodeAt(i) === 58) {
      if (gap >= 0) return null;
      gap = groups.length;
      i++;
      if (i === len) break;
    } else if (i === len) return null;
  }
  // Exactly 8 groups without `::`, or fewer than 8 with it (a `::` that stands for no group is left to parseIp).
  if (gap < 0 ? groups.length !== 8 : groups.length >= 8) return null;
  const out = new Array<number>(8).fill(0);
  const tail = gap < 0 ? 0 : groups.length - gap;
  for (let k = 0; k < (gap < 0 ? 8 : gap); k++) out[k] = groups[k] as number;
  for (let k = 0; k < tail; k++) out[8 - tail + k] = groups[(gap as number) + k] as number;
  let key = '';
  for (const g of out) key += String.fromCharCode(g >> 8, g & 0xff);
  return key;
}

const MAC_SHAPE = /^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/;

/**
 * A unicast, non-zero MAC's 48 bits as a number (exact in a double), or
 * null for anything parseMac refuses (it then says why). No BigInt, no
 * text: the fast path, as ipv4Number.
 */
export function macNumber(value: string): number | null {
  if (!MAC_SHAPE.test(value)) return null;
  const n = Number.parseInt(value.replace(/[:-]/g, ''), 16);
  // The multicast bit is the low bit of the first octet.
  if (n === 0 || Math.floor(n / 2 ** 40) % 2 === 1) return null;
  return n;
}

export function parseIpOf(field: string, value: unknown, family: Family): bigint {
  const p = parseIp(field, value);
  if (p.family !== family) throw invalid(field, value, `must be an IPv${family} address`);
  return p.n;
}

export function formatIp(family: Family, n: bigint): string {
  const bytes = bigintToBytes(n, family === 4 ? 4 : 16);
  return ipaddr.fromByteArray(bytes).toString();
}

export function parseCidr(field: string, value: unknown): Cidr {
  if (typeof value !== 'string' || !value.includes('/')) {
    throw invalid(field, value, 'must be a CIDR prefix such as 10.0.0.0/24 or 2001:db8::/64');
  }
  if (value.includes('%')) throw invalid(field, value, 'must be a CIDR prefix without a zone id (%...)');
  const parts = value.split('/');
  if (parts.length !== 2) throw invalid(field, value, 'must be one address and one prefix length, such as 10.0.0.0/24');
  const [addr, len] = parts as [string, string];
  const { family, n } = parseIp(field, addr);
  const bits = BITS[family];
  if (!/^\d{1,3}$/.test(len) || Number(len) > bits) {
    throw invalid(field, value, `prefix length must be 0..${bits}`);
  }
  const prefix = Number(len);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((n & hostMask) !== 0n) {
    const base = n & ~hostMask;
    throw invalid(field, value, `host bits set; did you mean ${formatIp(family, base)}/${prefix}?`);
  }
  return { family, base: n, prefix, text: `${formatIp(family, n)}/${prefix}` };
}

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(BITS[c.family] - c.prefix);
}

export function cidrLast(c: Cidr): bigint {
  return c.base + cidrSize(c) - 1n;
}

export function cidrContains(c: Cidr, family: Family, n: bigint): boolean {
  return family === c.family && n >= c.base && n <= cidrLast(c);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= cidrLast(b) && b.base <= cidrLast(a);
}

/**
 * The usable host range of a subnet for instance addresses: IPv4 skips the
 * network and broadcast addresses (except /31 and /32), IPv6 skips the
 * subnet-router anycast address (the all-zeros host).
 */
export function usableRange(c: Cidr): { lo: bigint; hi: bigint } {
  const last = cidrLast(c);
  if (c.family === 4) {
    if (c.prefix >= 31) return { lo: c.base, hi: last };
    return { lo: c.base + 1n, hi: last - 1n };
  }
  if (c.prefix === 128) return { lo: c.base, hi: last };
  return { lo: c.base + 1n, hi: last };
}

/** Parses `aa:bb:cc:dd:ee:ff` (or with dashes); returns the canonical lowercase colon form. */
export function parseMac(field: string, value: unknown): { n: bigint; text: string } {
  if (typeof value !== 'string' || !MAC_SHAPE.test(value)) {
    throw invalid(field, value, 'must be a MAC address such as 02:00:00:00:00:01');
  }
  const n = BigInt(`0x${value.replace(/[:-]/g, '')}`);
  if ((n >> 40n) & 1n) throw invalid(field, value, 'must be a unicast MAC (multicast bit clear)');
  if (n === 0n) throw invalid(field, value, 'must not be all zeros');
  // The regex fixed its shape: lower case with colons is formatMac(n), without the round trip.
  return { n, text: value.toLowerCase().replace(/-/g, ':') };
}

export function formatMac(n: bigint): string {
  return n
    .toString(16)
    .padStart(12, '0')
    .replace(/(..)(?!$)/g, '$1:');
}

/**
 * The IPv6 link-local address a host derives from its MAC by modified EUI-64
 * (RFC 4291 appendix A, RFC 4862): `fe80::/64` with the MAC split by `ff:fe`
 * and its universal/local bit flipped. Canonical text, e.g.
 * `02:00:00:00:00:01` -> `fe80::ff:fe00:1`. Throws E_INVALID_ARG on a bad MAC.
 */
export function linkLocalOf(mac: string): string {
  const m = parseMac('mac', mac).n;
  const iid = (((m >> 24n) ^ 0x020000n) << 40n) | (0xfffen << 24n) | (m & 0xffffffn);
  return formatIp(6, (0xfe80n << 112n) | iid);
}

/** Fixed-width hex key (32 chars) that sorts like the number: what the allocator stores. */
export function keyOf(n: bigint): string {
  return n.toString(16).padStart(32, '0');
}

export function fromKey(k: string): bigint {
  return BigInt(`0x${k}`);
}

function bytesToBigint(bytes: number[]): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function bigintToBytes(n: bigint, len: number): number[] {
  const out = new Array<number>(len);
  let v = n;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
