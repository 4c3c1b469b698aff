// A fabric router's rendered config from the store: its view (model/fabric.ts)
// read in one snapshot, rendered for its platform or the one asked for.
import { fabricView } from '../model/fabric.js';
import { renderBird } from '../model/fabric-bird.js';
import { renderFrr } from '../model/fabric-frr.js';
import { ROUTER_PLATFORMS, type RouterPlatform } from '../model/types.js';
import * as v from '../model/validate.js';
import type { Ctx } from './context.js';
import * as ref from './resolve.js';
import { hostView, peerView, routerView, siteView } from './views.js';

/** The router's config as `format` (default: its platform's), and the platform it was rendered for. */
export async function routerConfig(ctx: Ctx, routerRef: string, format?: string): Promise<{ platform: RouterPlatform; config: string }> {
  const wanted = format === undefined ? undefined : v.oneOf('format', format, ROUTER_PLATFORMS);
  const input = await ctx.store.snapshot(async (tx) => {
    const router = routerView(await ref.router(tx, routerRef));
    const site = siteView((await tx.get('sites', router.siteId)) as NonNullable<Awaited<ReturnType<typeof tx.get<'sites'>>>>);
    const racks = (await tx.all('racks', { siteId: site.id })).map((r) => ({ id: r.id, name: r.name }));
    const routers = (await tx.all('routers', { siteId: site.id })).map(routerView);
    const hosts = (await tx.all('hosts', { siteId: site.id })).map(hostView);
    const peerRows = [...(await tx.all('peers', { hostId: hosts.map((h) => h.id) })), ...(await tx.all('peers', { rackId: racks.map((r) => r.id) }))];
    const vips = (await tx.all('vips', { siteId: site.id })).map((x) => x.address);
    return { router, site, racks, routers, hosts, peers: peerRows.map(peerView), vips };
  });
  const platform = wanted ?? input.router.platform;
  const view = fabricView(input);
  return { platform, config: platform === 'bird' ? renderBird(view) : renderFrr(view) };
}
