// `weft lab fail link HOST [--silent]`: only the host's underlay link goes
// (set down, or every packet on it dropped with the carrier kept, so only
// BFD can tell), timed at its ToR. Healed as a host is (underlay.ts).
import type { Cloud } from '../cloud.js';
import { list, timeUntil } from '../measure.js';
import { type FaultReport, type FaultType, vipNotes } from './fault.js';
import { healUnderlay, notFailed, SILENCE_TABLE, sessionsLine } from './underlay.js';

export const linkFault: FaultType = {
  summary: 'only its underlay link',
  silent: true,
  target: (cloud, v) => cloud.hostArg('target', v),
  fail: (cloud, host, o) => {
    notFailed(cloud, host);
    return failLink(cloud, host, o.silent);
  },
  heal: healUnderlay,
};

async function failLink(cloud: Cloud, host: string, silent: boolean): Promise<FaultReport> {
  const overlay = cloud.routing.overlay;
  const rack = overlay.host(host).lab.rack;
  const routes = await cloud.routing.routesVia(rack, host);
  const t0 = performance.now();
  if (silent)
    await overlay.lab.exec(overlay.host(host).lab.ns, 'nft', ['-f', '-'], {
      input: `table netdev ${SILENCE_TABLE} {\n  chain in { type filter hook ingress device "ul0" priority -500; policy drop; }\n  chain out { type filter hook egress device "ul0" priority -500; policy drop; }\n}\n`,
    });
  else await overlay.lab.setUnderlay(host, false);
  cloud.faults.set(`link ${host}`, { what: 'link', target: host, silent, routes });
  const gone = await timeUntil(t0, async () => (await cloud.routing.routesVia(rack, host)).length === 0, 15_000);
  const sessions = await cloud.routing.hostSessions(host);
  const notes = [
    `before, the ToR ${rack} routed ${list(routes)} to ${host}`,
    sessionsLine(host, sessions),
    silent
      ? 'the carrier stayed up: only BFD (100 ms x 3) could tell the ToR'
      : 'a veth set down takes the carrier of its peer too: the ToR drops the sessions at once (Link down), before BFD (100 ms x 3) would; `--silent` leaves the carrier up',
    ...(await vipNotes(cloud, rack)),
  ];
  return {
    action: 'fail',
    what: 'link',
    target: host,
    done: [silent ? `every packet on ul0 of ${host} dropped (nftables), carrier up` : `ul0 of ${host} down`, 'agent and BIRD left running'],
    timings: [{ what: `ToR ${rack} stopped routing to ${host} (detection and withdrawal)`, ms: gone }],
    notes,
    commands: [],
    ok: gone !== null,
  };
}
