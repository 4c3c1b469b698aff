// What a port guard is made from, shared by the Dataplane seam, reconcile and
// its implementations (pure): the GuardPort spec, its validation and the spec
// hash a guard chain carries so observe() tells an up-to-date chain from a stale one.
import { createHash } from 'node:crypto';
import { linkLocalOf, parseIp, parseMac } from '../../model/addr.js';
import { invalid } from '../../model/errors.js';
import { checkIfname } from '../../model/ifname.js';
import { checkTenantAddress } from '../../model/tenant-addr.js';

/** What the guards of one local port are rendered from. Rates are packets/second for this port. */
export interface GuardPort {
  ifname: string;
  mac: string;
  ipv4: string | null;
  ipv6: string | null;
  arpRate: number;
  ndRate: number;
}

/** Bumped whenever the rules change, so every chain rendered by an older agent looks stale. */
export const GUARD_RULES_VERSION = 1;
export const RATE_MAX = 100000;

/** A valid GuardPort, addresses in canonical form (and the IPv6 one as a number), with its EUI-64 link-local. */
export interface NormalGuardPort {
  ifname: string;
  mac: string;
  ipv6: bigint | null;
  ipv4Text: string | null;
  ipv6Text: string | null;
  linkLocal: string;
  arpRate: number;
  ndRate: number;
}

/**
 * Validates a port and puts its addresses in canonical form. Throws
 * E_INVALID_ARG naming the field: ifname (IFNAME: 1-15 chars, letter or
 * digit first, then letters, digits, `_.-`), unicast MAC, IPv4 / IPv6 outside the
 * special-purpose ranges (model/tenant-addr.ts: the server's rule, so a port
 * the server accepted always renders; the EUI-64 link-local is always allowed
 * by the guards themselves), rates integers 1..RATE_MAX.
 */
export function normalGuardPort(p: GuardPort, at = 'port'): NormalGuardPort {
  checkIfname(`${at}.ifname`, p.ifname, 'must be 1-15 characters: a letter or digit, then letters, digits, _ . -');
  const mac = parseMac(`${at}.mac`, p.mac).text;
  let ipv6: bigint | null = null;
  let ipv4Text: string | null = null;
  let ipv6Text: string | null = null;
  if (p.ipv4 !== null) {
    const a = parseIp(`${at}.ipv4`, p.ipv4);
    if (a.family !== 4) throw invalid(`${at}.ipv4`, p.ipv4, 'must be an IPv4 address');
    checkTenantAddress(`${at}.ipv4`, 4, a.n, p.ipv4);
    ipv4Text = a.text;
  }
  if (p.ipv6 !== null) {
    const a = parseIp(`${at}.ipv6`, p.ipv6);
    if (a.family !== 6) throw invalid(`${at}.ipv6`, p.ipv6, 'must be an IPv6 address');
    checkTenantAddress(`${at}.ipv6`, 6, a.n, p.ipv6);
    ipv6 = a.n;
    ipv6Text = a.text;
  }
  for (const k of ['arpRate', 'ndRate'] as const) {
    const r = p[k];
    if (!Number.isInteger(r) || r < 1 || r > RATE_MAX) throw invalid(`${at}.${k}`, r, `must be an integer 1..${RATE_MAX} (packets/second)`);
  }
  return { ifname: p.ifname, mac, ipv6, ipv4Text, ipv6Text, linkLocal: linkLocalOf(mac), arpRate: p.arpRate, ndRate: p.ndRate };
}

/**
 * A short hash of everything a port's chain is rendered from, plus
 * GUARD_RULES_VERSION: equal for equal specs (addresses compared in
 * canonical form), different as soon as one field or the rules change. The
 * rendered chain carries it, so observe() tells an up-to-date chain from a
 * stale one. Throws E_INVALID_ARG on an invalid port.
 */
export function guardSpecHash(port: GuardPort): string {
  const n = normalGuardPort(port);
  const spec = [GUARD_RULES_VERSION, n.ifname, n.mac, n.ipv4Text ?? '-', n.ipv6Text ?? '-', n.arpRate, n.ndRate].join('|');
  return createHash('sha256').update(spec).digest('hex').slice(0, 16);
}
