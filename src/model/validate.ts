// Field validators used at every boundary (API bodies, CLI, config): each
// throws a WeftError naming the field, the value and what is allowed.
import { parseIp } from './addr.js';
import { invalid } from './errors.js';
import { isId } from './ids.js';

const NAME_RE = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

export function name(field: string, v: unknown): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) {
    throw invalid(field, v, 'must be 1-63 characters of a-z, 0-9, ".", "_" or "-", starting and ending with a letter or digit');
  }
  // References take "an id or a name" (core/resolve.ts): a name that reads
  // as an id would be ambiguous, or shadow the object that has that id.
  if (isId(v)) throw invalid(field, v, 'must not look like an id (a UUID such as 0190a1b2-...): references take an id or a name');
  return v;
}

export function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(field, v, `must be an integer ${min}..${max}`);
  }
  return v;
}

export function optInt(field: string, v: unknown, min: number, max: number): number | null {
  return v === undefined || v === null ? null : int(field, v, min, max);
}

export function oneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalid(field, v, `must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}

export function bool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalid(field, v, 'must be true or false');
  return v;
}

export function str(field: string, v: unknown, maxLen: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
  if (typeof v !== 'string' || v.length > maxLen || /[\x00-\x1f\x7f]/.test(v))
    throw invalid(field, v, `must be a string of at most ${maxLen} characters, without control characters`);
  return v;
}

/**
 * A 4-byte ASN usable on a BGP session: 1..4294967294, not AS_TRANS (23456)
 * and not the reserved 65535.
 */
export function asn(field: string, v: unknown): number {
  const n = int(field, v, 1, 4294967294);
  if (n === 23456 || n === 65535) throw invalid(field, v, 'must not be a reserved ASN (23456 AS_TRANS, 65535)');
  return n;
}

export const VNI_MIN = 1;
export const VNI_MAX = 16777215;
/** VNIs weft hands out itself when none is given; lower ones are left for operators. */
export const VNI_AUTO_MIN = 4096;

/** Per-port ARP/ND limits (packets/s) a network may have; tenants get at most the server's maximum. */
export const RATE_MAX = 100000;

export const MTU_MIN = 1280;
export const MTU_MAX = 9000;

/** The most source addresses a host's SVP shoot-down log may be bound to besides its underlay. */
export const MAX_SVP_CLIENT_ADDRESSES = 16;

/**
 * The source addresses an SVP client may connect from besides its underlay:
 * distinct unicast IPv4 or IPv6 addresses, at most MAX_SVP_CLIENT_ADDRESSES,
 * returned in canonical text. IPv4-mapped IPv6 is refused (a connection from
 * it is matched as the IPv4 address it maps, so that is what to write).
 */
export function svpClientAddresses(field: string, v: unknown): string[] {
  if (!Array.isArray(v)) throw invalid(field, v, 'must be a list of IPv4 or IPv6 addresses');
  if (v.length > MAX_SVP_CLIENT_ADDRESSES) throw invalid(field, v.length, `must hold at most ${MAX_SVP_CLIENT_ADDRESSES} addresses`);
  const seen = new Set<string>();
  return v.map((x, i) => {
    const at = `${field}[${i}]`;
    const ip = parseIp(at, x);
    if (ip.family === 6 && ip.n >> 32n === 0xffffn) {
      throw invalid(at, x, 'must not be IPv4-mapped IPv6 (::ffff:a.b.c.d): give the IPv4 address itself');
    }
    const top8 = ip.n >> BigInt(ip.family === 4 ? 24 : 120);
    const unspecified = ip.n === 0n;
    const multicast = ip.family === 4 ? top8 >= 224n : top8 === 0xffn;
    if (unspecified || multicast) throw invalid(at, x, 'must be a unicast address a connection can come from (not unspecified, multicast or broadcast)');
    if (seen.has(ip.text)) throw invalid(at, x, 'is in the list twice');
    seen.add(ip.text);
    return ip.text;
  });
}
