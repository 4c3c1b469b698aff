// Which SVP shoot-down entries a change produces (docs/protocol.md, as Triton's
// NAPI writes them): the hosts with a port on the VNI must drop what they
// cached. Pure; the core stores the entries in the change's transaction.
import type { Change, PortMapping } from './changes.js';

export type Shootdown = { kind: 'vl2'; vni: number; mac: string } | { kind: 'vl3'; vni: number; ip: string };

const ips = (p: PortMapping): string[] => [p.ipv4, p.ipv6].filter((x): x is string => x !== null);

/**
 * created -> VL3 for its IPs; deleted -> VL2; moved -> VL2 and VL3 for its
 * IPs; IP changed -> VL3 for the old and the new IPs. Routed ports (no VNI)
 * and other changes produce none.
 */
export function shootdownsFor(c: Change): Shootdown[] {
  switch (c.kind) {
    case 'port.created':
      return c.port.vni === null ? [] : ips(c.port).map((ip) => ({ kind: 'vl3', vni: c.port.vni as number, ip }));
    case 'port.deleted':
      return c.port.vni === null ? [] : [{ kind: 'vl2', vni: c.port.vni, mac: c.port.mac }];
    case 'port.moved':
      return c.port.vni === null
        ? []
        : [{ kind: 'vl2', vni: c.port.vni, mac: c.port.mac }, ...ips(c.port).map((ip) => ({ kind: 'vl3' as const, vni: c.port.vni as number, ip }))];
    case 'port.updated': {
      if (c.port.vni === null) return [];
      const before = new Set(ips(c.before));
      const after = new Set(ips(c.port));
      const changed = [...before].filter((ip) => !after.has(ip)).concat([...after].filter((ip) => !before.has(ip)));
      return changed.map((ip) => ({ kind: 'vl3', vni: c.port.vni as number, ip }));
    }
    default:
      return [];
  }
}
