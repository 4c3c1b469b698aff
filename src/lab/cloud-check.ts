// `weft lab check`: the cloud's end-to-end check (reachability, isolation,
// full-size packets, no flooding on the underlay, the VIP, agents, BGP),
// one item per property, each with the figures it rests on.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { portIfname } from '../agent/names.js';
import { instanceDir } from '../model/profile.js';
import { run } from '../sys/exec.js';
import { pool } from '../sys/pool.js';
import { until } from '../sys/until.js';
import { protocols } from './bird.js';
import { type Cloud, vmDir } from './cloud.js';
import { capture, type LabVm } from './overlay-lab.js';
import { EXAMPLE_SSH_KEY, OVERLAY_MTU } from './plan.js';
import { countVxlan } from './vxlan-frames.js';

/** One property the check tested: its label (stable, read by users and tests), whether it held, and the figures. */
export interface CheckItem {
  check: string;
  ok: boolean;
  detail: string;
}

/**
 * The lab's end-to-end check: reachability within each tenant (IPv4 and
 * IPv6, every ordered pair), isolation between tenants (addresses used
 * only in another tenant answer nothing), full-size overlay packets
 * (OVERLAY_MTU, not fragmented) between sites, no ARP/NDP or broadcast
 * inside VXLAN on any host's underlay meanwhile, the VIP answered from
 * the client behind the WAN router by backends on several racks, every
 * agent at the head, every BGP session of every fabric router up.
 */
export async function checkCloud(cloud: Cloud): Promise<CheckItem[]> {
  const overlay = cloud.routing.overlay;
  const items: CheckItem[] = [];
  // A link set down by `fail` cannot be captured on (and carries nothing).
  const down = [...cloud.faults.values()].filter((f) => (f.what === 'host' || f.what === 'link') && !f.silent).map((f) => f.target);
  const watched = [...overlay.hosts.values()].filter((h) => !down.includes(h.name));
  const caps = await Promise.all(watched.map((h) => capture(overlay.lab, h.lab.ns, 'ul0', `${overlay.dir}/check-${h.name}-${Date.now()}.pcap`)));
  let lines: string[] = [];
  try {
    const byTenant = new Map<string, LabVm[]>();
    for (const v of cloud.vms) byTenant.set(v.instance.name.replace(/vm\d+$/, ''), [...(byTenant.get(v.instance.name.replace(/vm\d+$/, '')) ?? []), v]);
    const pairs: { from: LabVm; to: LabVm; fam: 4 | 6 }[] = [];
    for (const list of byTenant.values())
      for (const a of list) for (const b of list) if (a !== b) for (const fam of [4, 6] as const) pairs.push({ from: a, to: b, fam });
    const results = await pool(
      8,
      pairs.map((p) => () => cloud.ping(overlay.vmNs(p.from.name), (p.fam === 4 ? p.to.port.ipv4 : p.to.port.ipv6) as string)),
    );
    const failed = pairs.filter((_, i) => !results[i]).map((p) => `${p.from.name}->${p.to.name} v${p.fam}`);
    const siteOf = (v: LabVm) => overlay.host(cloud.where(v.name)).site;
    const across = pairs.filter((p) => siteOf(p.from) !== siteOf(p.to)).length;
    items.push({
      check: 'reachability within tenants',
      ok: failed.length === 0,
      detail: `${pairs.length - failed.length}/${pairs.length} pings answered (${across} between sites)${failed.length ? `; failed: ${failed.slice(0, 10).join(', ')}` : ''}`,
    });

    // The overlay's MTU is the underlay's less VXLAN: a full-size packet, not to be fragmented, crosses the WAN.
    const big: string[] = [];
    const lost: string[] = [];
    for (const list of byTenant.values()) {
      const a = list[0];
      // Another site's instance if there is one, else another host's.
      const b = a && (list.find((v) => siteOf(v) !== siteOf(a)) ?? list.find((v) => cloud.where(v.name) !== cloud.where(a.name)));
      if (!a || !b) continue;
      for (const [ip, size] of [
        [b.port.ipv4, OVERLAY_MTU - 28],
        [b.port.ipv6, OVERLAY_MTU - 48],
      ] as const) {
        if (!ip) continue;
        const what = `${a.name} (${siteOf(a)}) -> ${b.name} (${siteOf(b)}) ${ip.includes(':') ? 'v6' : 'v4'}`;
        const r = await run('ping', ['-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', '-M', 'do', '-s', String(size), ip], {
          netns: overlay.vmNs(a.name),
          okCodes: [1, 2],
        });
        (/ [12] received/.test(r.stdout) ? big : lost).push(what);
      }
    }
    items.push({
      check: `overlay MTU ${OVERLAY_MTU} across the underlay`,
      ok: lost.length === 0 && big.length > 0,
      detail: `${OVERLAY_MTU}-byte packets, not fragmented: ${big.length} answered${big.length ? ` (${big.join(', ')})` : ''}${lost.length ? `; lost: ${lost.join(', ')}` : ''}`,
    });

    // The tenants' subnets overlap: an address another tenant uses must, from here, be unanswered or
    // answered by this tenant's own instance of that address (its MAC), never by the other tenant's.
    const leaks: string[] = [];
    let tried = 0;
    for (const [t, list] of byTenant) {
      const src = list[0];
      if (!src) continue;
      const mine = new Map(list.flatMap((v) => [v.port.ipv4, v.port.ipv6].filter((ip): ip is string => !!ip).map((ip) => [ip, v.port.mac] as const)));
      const theirs = [...byTenant]
        .filter(([o]) => o !== t)
        .flatMap(([, l]) => l.flatMap((v) => [v.port.ipv4, v.port.ipv6].filter((ip): ip is string => !!ip).map((ip) => ({ ip, mac: v.port.mac }))))
        .filter((x) => x.ip !== src.port.ipv4 && x.ip !== src.port.ipv6);
      const answered = await pool(
        8,
        theirs.map((x) => () => cloud.ping(overlay.vmNs(src.name), x.ip)),
      );
      tried += theirs.length;
      for (const [i, x] of theirs.entries()) {
        if (!answered[i]) continue;
        const own = mine.get(x.ip);
        const neigh = (await run('ip', ['neigh', 'show', x.ip], { netns: overlay.vmNs(src.name) })).stdout;
        if (!own || !neigh.includes(own) || neigh.includes(x.mac)) leaks.push(`${src.name}->${x.ip} (${neigh.trim() || 'answered'})`);
      }
    }
    items.push({
      check: 'isolation between tenants',
      ok: leaks.length === 0,
      detail: `${tried} addresses of other tenants tried: none reached another tenant${leaks.length ? `; LEAKS: ${leaks.join(', ')}` : ''}`,
    });
  } finally {
    lines = (await Promise.all(caps.map((k) => k.stop()))).flat();
  }
  const seen = countVxlan(lines);
  items.push({
    check: 'no ARP, NDP or broadcast flooded across the underlay',
    ok: seen.flood.length === 0 && seen.packets > 0,
    detail:
      `${seen.packets} VXLAN packets captured on ${watched.length} underlay links${down.length ? ` (down: ${down.join(', ')})` : ''}, ` +
      `${seen.flood.length} to a broadcast or multicast MAC; ${seen.probes} unicast ARP/NS reachability probes or answers between VMs (forwarded, not flooded, per RFC 9161)` +
      (seen.flood.length ? `; first: ${seen.flood[0]}` : ''),
  });

  const answers: string[] = [];
  for (let i = 0; i < 24; i++) {
    const res = await run('curl', ['-s', '-m', '2', '--connect-timeout', '1', `http://${cloud.vip}:8080/`], {
      netns: cloud.routing.clientNs,
      okCodes: [6, 7, 28, 52, 56],
    });
    answers.push(res.code === 0 ? res.stdout : `error ${res.code}`);
  }
  const served = [...new Set(answers.filter((a) => !a.startsWith('error')))].sort();
  const top = cloud.routing.top;
  const hops = await cloud.routing.nextHops(top, `${cloud.vip}/32`);
  const racks = new Set(served.map((w) => overlay.host(cloud.where(w)).lab.rack));
  items.push({
    check: 'VIP from outside the racks',
    ok: served.length >= Math.min(2, cloud.web.length) && answers.every((a) => !a.startsWith('error')),
    detail: `${answers.filter((a) => !a.startsWith('error')).length}/24 requests from a client behind the ${top} router answered by ${served.join(', ') || 'nobody'} (racks ${[...racks].join(', ') || 'none'}); the ${top} router's next hops ${hops.join(', ') || 'none'}`,
  });

  // Every replica that runs lists the agents connected to it; with none running, no agent is connected.
  const agents = await overlay.agents().catch(() => ({ head: 0, items: [] }));
  const lagging = agents.items.filter((a) => a.lag > 0);
  const replicas = overlay.servers.length > 1 ? ` across ${overlay.servers.filter((x) => x.proc).length}/${overlay.servers.length} server replicas` : '';
  items.push({
    check: 'agents at the head of the change log',
    ok: agents.items.length === overlay.hosts.size && lagging.length === 0,
    detail: `${agents.items.length}/${overlay.hosts.size} connected${replicas} at version ${agents.head}, ${lagging.length} lagging`,
  });
  // Every instance has a profile its hypervisor could run it from: the tap the agent plugs, the example key.
  const profiles = await pool(
    8,
    cloud.vms.map((v) => async () => {
      try {
        const p = await overlay.api.get<{ domain: string; userData: string }>(`/v1/instances/${v.instance.id}/profile`);
        return p.domain.includes(`<target dev='${portIfname(v.port.id)}'`) && p.userData.includes(EXAMPLE_SSH_KEY) ? null : `${v.name}: incomplete`;
      } catch (e) {
        return `${v.name}: ${(e as Error).message}`;
      }
    }),
  );
  const missing = profiles.filter((x): x is string => x !== null);
  // ... and its hypervisor's agent wrote it there (domain.xml, the seed, the disk), on no other host.
  // Off the path of the stream's acks (agent/vms.ts): right after a move the files may take a moment, so wait a little for them.
  const writtenNow = () =>
    cloud.vms.filter((v) => {
      const here = cloud.where(v.name);
      return [...overlay.hosts.keys()].every((h) => existsSync(join(instanceDir(vmDir(overlay.dir, h), v.instance.id), 'domain.xml')) === (h === here));
    }).length;
  await until('every profile on its hypervisor only', () => writtenNow() === cloud.vms.length, 10_000).catch(() => undefined);
  const written = writtenNow();
  items.push({
    check: 'VM profiles (libvirt domain and cloud-init seed) for every instance',
    ok: missing.length === 0 && cloud.vms.length > 0 && written === cloud.vms.length,
    detail: `${cloud.vms.length - missing.length}/${cloud.vms.length} complete, ${written}/${cloud.vms.length} written on their hypervisor only${missing.length ? `; not: ${missing.slice(0, 4).join(', ')}` : ''}`,
  });
  if (cloud.guest) items.push(await checkGuest(cloud));
  // Every session of every fabric router: ToR to hosts and spine, spine to WAN (or ToR to core).
  const notUp: string[] = [];
  let all = 0;
  for (const [node, bird] of cloud.routing.fabricBirds())
    for (const p of await protocols(bird))
      if (p.proto === 'BGP') {
        all++;
        if (!p.info.startsWith('Established')) notUp.push(`${node} ${p.name} ${(p.info || p.state).replace(/\s+/g, ' ')}`);
      }
  const routers = cloud.routing.fabricBirds().size;
  items.push({
    check: 'BGP sessions (ToRs to hosts and spines, spines to the WAN)',
    ok: notUp.length === 0 && all > 0,
    detail: `${all - notUp.length}/${all} Established on ${routers} routers${notUp.length ? `; not: ${notUp.slice(0, 8).join(', ')}` : ''}`,
  });
  const faults = [...cloud.faults.values()];
  items.push({
    check: 'no fault in place',
    ok: faults.length === 0,
    detail:
      faults.length === 0
        ? 'nothing failed by `weft lab fail`'
        : `still failed: ${faults.map((f) => `${f.what} ${f.target} (\`weft lab heal ${f.what} ${f.target}\`)`).join(', ')}`,
  });
  return items;
}

/**
 * The booted VM (`up --boot-vm`): answers pings over the overlay from a VM
 * of its tenant on another host (IPv4 and IPv6), and its serial console,
 * through the API's WebSocket, the server and its agent, runs a command.
 */
async function checkGuest(cloud: Cloud): Promise<CheckItem> {
  const g = cloud.guest as NonNullable<Cloud['guest']>;
  const overlay = cloud.routing.overlay;
  const peers = cloud.vms.filter((v) => cloud.tenantOf.get(v.name) === 't1' && cloud.where(v.name) !== g.vm.host);
  const siteOf = (v: LabVm) => overlay.host(cloud.where(v.name)).site;
  const guestSite = overlay.host(g.vm.host).site;
  // Another site's VM if there is one: the path crosses the WAN too.
  const from = peers.find((v) => siteOf(v) !== guestSite) ?? peers[0];
  const pings: string[] = [];
  let answered = 0;
  let asked = 0;
  if (from)
    for (const ip of [g.port.ipv4, g.port.ipv6].filter((x): x is string => x !== null)) {
      asked++;
      const ok = await cloud.ping(from.vm.ns, ip, 3);
      if (ok) answered++;
      pings.push(`${ip} ${ok ? 'answered' : 'NOT answered'}`);
    }
  const console = await consoleRuns(overlay.server.url, overlay.adminToken, g.instance.id).catch((e: Error) => `failed: ${e.message}`);
  return {
    check: 'booted VM (qemu, from its profile)',
    ok: from !== undefined && answered === asked && asked > 0 && console === 'ok',
    detail: `${g.instance.name} on ${g.vm.host}: ${from ? `from ${from.name} (${cloud.where(from.name)}): ${pings.join(', ')}` : 'no VM of t1 on another host to ping from'}; serial console through the API: ${console === 'ok' ? 'ran a command' : console}`,
  };
}

/** Attaches to an instance's console through the API, runs `echo` of a sum and waits for its result (not the echo of the input): 'ok', or why not. */
function consoleRuns(api: string, token: string, instanceId: string, ms = 15_000): Promise<string> {
  const url = new URL(`/v1/instances/${instanceId}/console?force=1`, api);
  url.protocol = 'ws:';
  const a = 1000 + Math.floor(Math.random() * 9000);
  const want = `weft-${a + 1}-check`;
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    let seen = '';
    const done = (r: string) => {
      clearTimeout(timer);
      clearInterval(nudge);
      ws.terminate();
      resolve(r);
    };
    const timer = setTimeout(() => done(`no answer in ${ms / 1000} s (got ${JSON.stringify(seen.slice(-80))})`), ms);
    // The shell may still be starting: ask again until it answers.
    const nudge = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(`echo weft-$((${a}+1))-check\n`), 1000);
    ws.on('open', () => ws.send(`\necho weft-$((${a}+1))-check\n`));
    ws.on('message', (b: Buffer) => {
      seen = (seen + b.toString('latin1')).slice(-4000);
      if (seen.includes(want)) done('ok');
    });
    ws.on('unexpected-response', (_q, r) => done(`HTTP ${r.statusCode}`));
    ws.on('close', (code, reason) => done(`closed (${code} ${reason.toString()})`));
    ws.on('error', (e) => done(e.message));
  });
}
