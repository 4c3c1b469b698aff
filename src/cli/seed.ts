// A small example cloud created through the API, as the README's main
// command shows it: two sites, racks, hosts with BGP peers, two tenants
// with overlapping private subnets, a routed network, instances and a VIP.
// Re-running it skips what already exists.

import { EXAMPLE_IMAGE, EXAMPLE_SSH_KEY } from '../lab/plan.js';
import { WeftError } from '../model/errors.js';
import type { ApiClient } from './client.js';

interface Named {
  id: string;
  name: string;
}

async function ensure<T extends Named>(api: ApiClient, path: string, body: Record<string, unknown>, log: (s: string) => void, query = ''): Promise<T> {
  const existing = await api.get<{ items: T[] }>(`/v1/${path}?name=${encodeURIComponent(String(body.name))}${query}`);
  if (existing.items[0]) return existing.items[0];
  const made = await api.post<T>(`/v1/${path}`, body);
  log(`created ${path.replace(/s$/, '')} ${made.name}`);
  return made;
}

export async function seedExample(api: ApiClient, log: (s: string) => void): Promise<void> {
  const sites = [
    { name: 'ams1', underlayPool: '192.0.2.0/25', ipv4Pools: ['203.0.113.0/25'], ipv6Block: '2001:db8:a::/48', vm: { dnsServers: ['192.0.2.53'] } },
    { name: 'fra1', underlayPool: '192.0.2.128/25', ipv4Pools: ['203.0.113.128/25'], ipv6Block: '2001:db8:f::/48', vm: { dnsServers: ['192.0.2.181'] } },
  ];
  let asn = 65101;
  for (const s of sites) {
    const site = await ensure(api, 'sites', s, log);
    for (const r of ['r1', 'r2']) {
      const rack = await ensure(api, 'racks', { site: site.id, name: `${s.name}-${r}` }, log, `&site=${site.id}`);
      const peers = await api.get<{ items: unknown[] }>(`/v1/peers?rack=${rack.id}`);
      if (peers.items.length === 0) {
        await api.post('/v1/peers', {
          rack: rack.id,
          neighbor: s.name === 'ams1' ? '198.51.100.1' : '198.51.100.2',
          remoteAsn: 65000,
          maxPrefix: 1000,
          bfd: true,
        });
        log(`created peer for rack ${rack.name}`);
      }
      for (const h of ['hv1', 'hv2']) {
        await ensure(
          api,
          'hosts',
          { name: `${s.name}-${r}-${h}`, site: site.id, rack: rack.id, asn: asn++, capacity: { cpus: 32, memoryMb: 131072, diskGb: 2000 } },
          log,
        );
      }
    }
  }
  for (const t of ['acme', 'globex']) {
    await ensure(api, 'tenants', { name: t }, log);
    // A key for the instances' profiles (its private half is nobody's: add yours with `weft key create`).
    await ensure(api, 'keys', { tenant: t, name: 'example', publicKey: EXAMPLE_SSH_KEY }, log, `&tenant=${t}`);
    // Both tenants use the same private subnets: their overlays are isolated by VNI.
    await ensure(api, 'networks', { tenant: t, name: 'private', kind: 'overlay', subnets: ['10.10.0.0/24', 'fd00:10::/64'], mtu: 1450 }, log, `&tenant=${t}`);
  }
  await ensure(api, 'networks', { tenant: 'acme', name: 'public-ams1', kind: 'routed', site: 'ams1' }, log, '&tenant=acme');
  const backends: string[] = [];
  for (const [t, i] of [
    ['acme', 1],
    ['acme', 2],
    ['acme', 3],
    ['acme', 4],
    ['globex', 1],
    ['globex', 2],
  ] as const) {
    const name = `${t}-vm${i}`;
    const found = await api.get<{ items: Named[] }>(`/v1/instances?tenant=${t}&name=${name}`);
    let inst = found.items[0] as (Named & { ports?: { id: string; networkId: string }[] }) | undefined;
    if (!inst) {
      const ports: Record<string, string>[] = [{ network: 'private' }];
      if (t === 'acme' && i <= 2) ports.push({ network: 'public-ams1' });
      try {
        inst = await api.post('/v1/instances', { tenant: t, name, site: 'ams1', size: 'small', image: EXAMPLE_IMAGE, ports });
        log(`created instance ${name}`);
      } catch (e) {
        if (e instanceof WeftError) throw new WeftError(e.code, `instance ${name}: ${e.message}`, e.field);
        throw e;
      }
    } else {
      inst = await api.get(`/v1/instances/${inst.id}`);
    }
    if (t === 'acme' && i <= 2 && inst?.ports?.[1]) backends.push(inst.ports[1].id);
  }
  const vips = await api.get<{ items: unknown[] }>('/v1/vips?tenant=acme&name=web');
  if (vips.items.length === 0) {
    await api.post('/v1/vips', { tenant: 'acme', name: 'web', site: 'ams1', backends, healthCheck: { type: 'http', port: 80, path: '/healthz' } });
    log('created vip web');
  }
}
