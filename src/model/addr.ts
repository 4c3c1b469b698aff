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
  if (typeof value !== 'string' || !ipaddr.isValid(value) || value.includes('/')) {
    throw invalid(field, value, 'must be an IPv4 or IPv6 address');
  }
  // ipaddr.isValid accepts odd IPv4 forms ("1", "0x1"); insist on dotted quads.
  if (!value.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(value)) {
    throw invalid(field, value, 'must be an IPv4 address in dotted-quad form');
  }
  const a = ipaddr.parse(value);
  const family: Family = a.kind() === 'ipv4' ? 4 : 6;
  const n = bytesToBigint(a.toByteArray());
  return { family, n, text: formatIp(family, n) };
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
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(value)) {
    throw invalid(field, value, 'must be a MAC address such as 02:00:00:00:00:01');
  }
  const n = BigInt(`0x${value.replace(/[:-]/g, '')}`);
  if ((n >> 40n) & 1n) throw invalid(field, value, 'must be a unicast MAC (multicast bit clear)');
  if (n === 0n) throw invalid(field, value, 'must not be all zeros');
  return { n, text: formatMac(n) };
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
