// What addresses and prefixes a tenant's traffic may use (pure): the one
// rule the server applies to networks' subnets, ports, VIPs and sites'
// routed pools, and the agent's guard renderer applies to each port.
import { type Cidr, cidrLast, cidrsOverlap, type Family, formatIp, parseCidr } from './addr.js';
import { invalid } from './errors.js';

/** A special-purpose range no tenant address or subnet may touch, with what it is. */
interface Special {
  c: Cidr;
  what: string;
}

const special = (text: string, what: string): Special => ({ c: parseCidr('special', text), what });

/**
 * Special-purpose ranges (RFC 6890 and friends) that make no sense for a
 * tenant: the agent's guards cannot be rendered for them, or they would be
 * delivered to the host itself, to every host or to nobody.
 */
export const SPECIAL_RANGES: readonly Special[] = [
  special('0.0.0.0/8', '"this network" (0.0.0.0/8)'),
  special('127.0.0.0/8', 'loopback (127.0.0.0/8)'),
  special('169.254.0.0/16', 'link-local (169.254.0.0/16)'),
  special('224.0.0.0/4', 'multicast (224.0.0.0/4)'),
  special('240.0.0.0/4', 'reserved or broadcast (240.0.0.0/4, 255.255.255.255)'),
  special('::/128', 'the unspecified address (::)'),
  special('::1/128', 'loopback (::1)'),
  special('::ffff:0:0/96', 'IPv4-mapped (::ffff:0:0/96)'),
  special('fe80::/10', 'link-local (fe80::/10)'),
  special('ff00::/8', 'multicast (ff00::/8)'),
];

/**
 * The shortest prefix a tenant subnet (an overlay network's) or a site's
 * routed pool may have: a /8 of IPv4, a /16 of IPv6. Anything wider is a
 * typo or an attempt to cover special ranges.
 */
export const MIN_PREFIX: Record<Family, number> = { 4: 8, 6: 16 };

const RANGES_TEXT = () => SPECIAL_RANGES.map((x) => x.c.text).join(', ');

/** Why `n` may not be a tenant address (the special range it is in), or null when it may. */
export function tenantAddressProblem(family: Family, n: bigint): string | null {
  for (const s of SPECIAL_RANGES) if (s.c.family === family && n >= s.c.base && n <= cidrLast(s.c)) return s.what;
  return null;
}

/** Throws E_INVALID_ARG naming `field` when the address is in a special-purpose range. */
export function checkTenantAddress(field: string, family: Family, n: bigint, value: unknown = formatIp(family, n)): void {
  const p = tenantAddressProblem(family, n);
  if (p) throw invalid(field, value, `must be a unicast address, not ${p}; the special-purpose ranges ${RANGES_TEXT()} are refused`);
}

/**
 * Throws E_INVALID_ARG naming `field` when a tenant subnet or routed pool
 * is shorter than MIN_PREFIX or overlaps a special-purpose range.
 */
export function checkTenantPrefix(field: string, c: Cidr, value: unknown = c.text): void {
  if (c.prefix < MIN_PREFIX[c.family])
    throw invalid(field, value, `prefix too short: an IPv${c.family} subnet or pool must be a /${MIN_PREFIX[c.family]} or longer`);
  for (const s of SPECIAL_RANGES)
    if (cidrsOverlap(s.c, c)) throw invalid(field, value, `overlaps ${s.what}; subnets and pools must lie outside the special-purpose ranges ${RANGES_TEXT()}`);
}
