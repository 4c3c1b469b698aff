// Names of the kernel objects weft owns on a host. Every device weft makes or
// adopts has one of these prefixes, so the agent can tell its own objects
// from the rest of the host and never touches anything else.

export const VXLAN_PREFIX = 'wvx';
export const BRIDGE_PREFIX = 'wbr';
export { PORT_PREFIX } from '../model/ifname.js';
/** Set as the alias (`ip link set dev X alias weft`) of devices weft created. */
export const OWNER_ALIAS = 'weft';

export const vxlanName = (vni: number): string => `${VXLAN_PREFIX}${vni}`;
export const bridgeName = (vni: number): string => `${BRIDGE_PREFIX}${vni}`;

/** The host-side interface of a local port: model/ifname.ts, where the API's port view gets it too. */
export { portIfname } from '../model/ifname.js';

/**
 * The fixed MAC of bridge `wbr<vni>`: `0e:57:46` and the VNI's 24 bits
 * (locally administered, outside the ports' 02:57:46 range). A bridge
 * without a set address takes its lowest port's, and every change of it
 * flushes the bridge's neighbour entries, permanent ones included.
 */
export function bridgeMac(vni: number): string {
  const h = vni.toString(16).padStart(6, '0');
  return `0e:57:46:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

/** The VNI of a weft vxlan or bridge device name, or null when the name is not weft's. */
export function vniOfDevice(name: string): number | null {
  const m = /^(wvx|wbr)(\d{1,8})$/.exec(name);
  if (!m) return null;
  const vni = Number(m[2]);
  return vni >= 1 && vni <= 16777215 ? vni : null;
}
