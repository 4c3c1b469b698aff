// Linux interface names: the one pattern weft accepts wherever a name goes
// into a command, a ruleset or a config (iproute2, nft, bird.conf, the lab);
// and the name of a port's host-side interface, which the API shows (the
// device its hypervisor must create) and the agent plugs and guards.
import { createHash } from 'node:crypto';
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

export const PORT_PREFIX = 'wp';

/**
 * The host-side interface of a local port (a VM's tap, or the host end of a
 * container's veth): `wp` and 12 hex digits of the port id's SHA-256, within
 * Linux's 15-character limit. The hypervisor creates the device under this
 * name; the agent plugs it into the network's bridge and guards it.
 */
export function portIfname(portId: string): string {
  return PORT_PREFIX + createHash('sha256').update(portId).digest('hex').slice(0, 12);
}
