// Linux interface names: the one pattern weft accepts wherever a name goes
// into a command, a ruleset or a config (iproute2, nft, bird.conf, the lab).
import { invalid } from './errors.js';

/** Linux's limit on interface names (IFNAMSIZ - 1). */
export const IFNAME_MAX = 15;

/**
 * 1..IFNAME_MAX of [A-Za-z0-9_.-], a letter or digit first: no space, `/`
 * or `:` (Linux refuses them), no quote (names are written into nft and
 * bird.conf), and no leading `-` or `.` (an option to iproute2, `.` / `..`).
 */
export const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/**
 * Returns `value` when it is an interface name (IFNAME); throws E_INVALID_ARG
 * naming `field` otherwise, with `allowed` as the message's last part.
 */
export function checkIfname(field: string, value: unknown, allowed = `must be 1..${IFNAME_MAX} of [A-Za-z0-9_.-]`): string {
  if (typeof value !== 'string' || !IFNAME.test(value)) throw invalid(field, value, allowed);
  return value;
}
