// `weft lab fail host HOST`: the hypervisor goes dark (its link down, its
// agent and BIRD killed), timed at its ToR; the server is not told. Healed
// as its link is (underlay.ts); `weft lab evacuate` (evacuate.ts) is what an
// operator does in between.
import { conflict } from '../../model/errors.js';
import type { Cloud } from '../cloud.js';
import { list, timeUntil } from '../measure.js';
import { type FaultReport, type FaultType, vipNotes } from './fault.js';
import { healUnderlay, notFailed, sessionsLine } from './underlay.js';

export const hostFault: FaultType = {
  summary: 'the hypervisor goes dark',
  target: (cloud, v) => cloud.hostArg('target', v),
  fail: (cloud, host) => {
    notFailed(cloud, host);
    return failHost(cloud, host);
  },
  heal: healUnderlay,
};

async function failHost(cloud: Cloud, host: string): Promise<FaultReport> {
  const overlay = cloud.routing.overlay;
  const rack = overlay.host(host).lab.rack;
  const backends = cloud.web.filter((w) => cloud.where(w.name) === host).map((w) => w.name);
  if (backends.some((b) => cloud.faults.has(`backend ${b}`)))
    throw conflict(`backend ${backends.join(', ')} on ${host} is failed: \`weft lab heal backend\` it first`, 'target');
  const routes = await cloud.routing.routesVia(rack, host);
  const t0 = performance.now();
  // The link first: a host losing power sends nothing more, not even the FIN of its BGP sessions.
  await overlay.lab.setUnderlay(host, false);
  await Promise.all([overlay.killAgent(host), cloud.routing.killBird(host)]);
  cloud.faults.set(`host ${host}`, { what: 'host', target: host, silent: false, routes });
  const gone = await timeUntil(t0, async () => (await cloud.routing.routesVia(rack, host)).length === 0, 15_000);
  const notes = [
    `before, the ToR ${rack} routed ${list(routes)} to ${host}`,
    sessionsLine(host, await cloud.routing.hostSessions(host)),
    ...(await vipNotes(cloud, rack)),
  ];
  const mine = cloud.instances().filter((i) => i.host === host);
  notes.push(
    `the server still counts ${host} as active and its ${mine.length} instances as placed there: nothing re-places them until an operator does`,
    `\`weft lab evacuate ${host}\` runs these commands' API calls and switches each VM over to its new host (\`weft lab move INSTANCE\` does it for one)`,
  );
  return {
    action: 'fail',
    what: 'host',
    target: host,
    done: [`ul0 of ${host} down`, `agent of ${host} killed (SIGKILL)`, `BIRD of ${host} killed (SIGKILL)`],
    timings: [{ what: `ToR ${rack} stopped routing to ${host}`, ms: gone }],
    notes,
    commands: [`weft host update ${host} --state down`, ...mine.map((i) => `weft instance migrate ${i.name}`)],
    ok: gone !== null,
  };
}
