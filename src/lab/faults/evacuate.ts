// `weft lab evacuate HOST`: what an operator does after `fail host HOST`
// (the host down in the API, every instance on it migrated), each VM switched
// over to its new host, timed until it answers there. It lives beside the host
// fault: it acts on that fault's record, and healing the host undoes it.
import { conflict } from '../../model/errors.js';
import type { Cloud } from '../cloud.js';
import { list, timeUntil } from '../measure.js';
import type { RoutedVm } from '../routing-lab.js';
import { answerTiming, type Timing, vipNotes } from './fault.js';

/** What `Cloud.evacuate` did and measured. */
export interface EvacuationReport {
  host: string;
  /** The operator's commands, in the order their API calls were made. */
  commands: string[];
  /** Each instance re-placed: where to, and ms from the first API call until it answered there (null: not within the wait). */
  moves: { instance: string; kind: 'overlay' | 'routed'; to: string; pingFrom: string; answeredMs: number | null }[];
  timings: Timing[];
  notes: string[];
  /** Every instance answers on its new host and the failed host is no VIP next hop at its ToR. */
  ok: boolean;
}

/**
 * `weft lab evacuate HOST`, after `fail host HOST`: what the operator
 * would run, through the API in this order: `weft host update HOST
 * --state down`, then `weft instance migrate NAME` for every instance the
 * API has on it (placement picks the target, never a down host), each
 * VM's link switched over to its new host as the migration lands. Times
 * how long until every instance answers there and every agent applied it,
 * and until a moved VIP backend's new host is a next hop at its ToR; checks
 * the failed host is no VIP next hop at its ToR. Throws E_INVALID_ARG
 * (unknown host), E_CONFLICT (host not failed, or evacuated already).
 */
export async function evacuateHost(cloud: Cloud, target: unknown): Promise<EvacuationReport> {
  const overlay = cloud.routing.overlay;
  const host = cloud.hostArg('host', target);
  const f = cloud.faults.get(`host ${host}`);
  if (!f)
    throw conflict(
      `host ${host} is not failed: \`weft lab fail host ${host}\` first (a working host is drained with \`weft host update ${host} --state draining\` and \`weft lab move\`)`,
      'host',
    );
  if (f.evacuated) throw conflict(`host ${host} is evacuated already: \`weft lab heal host ${host}\` brings it back`, 'host');
  cloud.needServer();
  const { rack, underlayIp } = overlay.host(host).lab;
  const api = cloud.routing.api;
  const commands: string[] = [];
  const notes: string[] = [];
  const moves: EvacuationReport['moves'] = [];
  const answering: Promise<void>[] = [];
  const t0 = performance.now();
  await api.patch(`/v1/hosts/${host}`, { state: 'down' });
  commands.push(`weft host update ${host} --state down`);
  f.downInApi = true;
  const placed = await api.all<{ id: string; name: string }>('/v1/instances', { host });
  for (const i of placed) {
    commands.push(`weft instance migrate ${i.name}`);
    const routed = cloud.web.find((w) => w.name === i.name);
    if (!routed && !cloud.vms.some((v) => v.name === i.name)) {
      await api.post(`/v1/instances/${i.id}/migrate`, {});
      notes.push(`${i.name} has no VM in the lab: migrated in the API only`);
      continue;
    }
    // The same call as `weft instance migrate NAME` (no target: placement picks), then the VM's switch-over.
    const to = routed ? await cloud.routing.moveRouted(i.name) : await overlay.move(i.name);
    const m = { instance: i.name, kind: routed ? ('routed' as const) : ('overlay' as const), to, pingFrom: '', answeredMs: null as number | null };
    moves.push(m);
    if (cloud.dark(to)) notes.push(`placement put ${i.name} on ${to}, which is failed in the lab but active in the API`);
    answering.push(
      (async () => {
        const a = await answerTiming(cloud, t0, overlay.vms.get(i.name) ?? (routed as RoutedVm));
        m.pingFrom = a.from;
        m.answeredMs = a.ms;
      })(),
    );
  }
  await Promise.all(answering);
  const timings: Timing[] = [];
  const slowest = moves.some((m) => m.answeredMs === null) ? null : Math.max(0, ...moves.map((m) => m.answeredMs as number));
  timings.push({ what: `every instance of ${host} (${moves.length}) answers on its new host`, ms: slowest });
  const applied = await overlay
    .converged(30_000)
    .then(() => Math.round(performance.now() - t0))
    .catch(() => null);
  timings.push({ what: 'every agent at the head of the change log', ms: applied });
  for (const m of moves.filter((x) => cloud.web.some((w) => w.name === x.instance))) {
    const to = overlay.host(m.to).lab;
    const ms = await timeUntil(t0, async () => (await cloud.routing.nextHops(to.rack, `${cloud.vip}/32`)).includes(to.underlayIp), 30_000);
    timings.push({ what: `VIP backend ${m.instance}: ${m.to} a next hop of the VIP at ToR ${to.rack}`, ms });
  }
  f.evacuated = true;
  const hops = await cloud.routing.nextHops(rack, `${cloud.vip}/32`);
  const gone = !hops.includes(underlayIp);
  notes.push(
    `VIP ${cloud.vip} next hops at ToR ${rack}: ${list(hops)}: ${host} (${underlayIp}) ${gone ? 'is gone from them' : 'is STILL among them'}`,
    ...(await vipNotes(cloud, rack)),
    `${host} is down in the API: placement gives it nothing; \`weft lab heal host ${host}\` brings it back and sets it active again`,
  );
  return { host, commands, moves, timings, notes, ok: gone && timings.every((t) => t.ms !== null) };
}
