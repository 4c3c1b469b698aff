// A one-rack fabric for the tests that run rendered router configs on real
// daemons (fabric-apply.test.ts on BIRD, fabric-frr.test.ts on FRR): a site,
// a ToR at 192.0.2.0 (AS 65010) and one host at 192.0.2.1 whose ASN a test
// may change (the source of truth saying something the host does not).
import { type FabricView, fabricView } from '../../src/model/fabric.js';
import { VM_DEFAULTS } from '../../src/model/profile.js';
import type { Host, Router, RouterPlatform, Site } from '../../src/model/types.js';

const AT = '2026-01-01T00:00:00.000Z';

export function oneRackFabric(o: { site: string; platform: RouterPlatform }) {
  const site: Site = {
    id: 'site',
    name: o.site,
    underlayPool: '192.0.2.0/26',
    ipv4Pools: ['203.0.113.0/27'],
    ipv6Block: '2001:db8:101::/48',
    vm: { ...VM_DEFAULTS },
    createdAt: AT,
  };
  const host = (asn = 65101): Host => ({
    id: 'host',
    name: 'hv1',
    siteId: 'site',
    rackId: 'rack',
    underlayIp: '192.0.2.1',
    asn,
    capacity: { cpus: 1, memoryMb: 1, diskGb: 1 },
    used: { cpus: 0, memoryMb: 0, diskGb: 0 },
    svpClient: false,
    svpClientAddresses: [],
    state: 'active',
    ipv6Prefix: '2001:db8:101:1::/64',
    createdAt: AT,
  });
  const tor: Router = {
    id: 'tor',
    name: 'tor1',
    role: 'tor',
    siteId: 'site',
    rackId: 'rack',
    asn: 65010,
    bgpRouterId: '192.0.2.0',
    loopback: '192.0.2.0',
    mgmtAddress: null,
    platform: o.platform,
    bfd: false,
    maxPrefix: 100,
    upstreams: [],
    createdAt: AT,
  };
  /** The ToR's view with the host at `hostAsn`, the ToR as given (default as above). */
  const view = (hostAsn = 65101, router: Router = tor): FabricView =>
    fabricView({ router, site, racks: [{ id: 'rack', name: 'r1' }], routers: [router], hosts: [host(hostAsn)], peers: [], vips: [] });
  return { site, host, tor, view };
}
