// What the host and link faults share: both take a host's underlay link
// away (`ul0` down, or silenced), and both heal the same way, timed at the
// host's ToR until its sessions are Established and its routes are back.
import { conflict } from '../../model/errors.js';
import type { BirdProtocol } from '../bird.js';
import type { Cloud } from '../cloud.js';
import { list, timeUntil } from '../measure.js';
import { type Fault, type FaultReport, type Timing, vipNotes } from './fault.js';

/** The netdev table `fail link --silent` adds on a host's `ul0`: every packet in and out dropped, the carrier kept. */
export const SILENCE_TABLE = 'weftlab_silence';

/** Throws E_CONFLICT when host `host` or its link is failed already. */
export function notFailed(cloud: Cloud, host: string): void {
  for (const k of ['host', 'link'] as const)
    if (cloud.faults.has(`${k} ${host}`))
      throw conflict(`${k === 'host' ? 'host' : 'the link of'} ${host} is failed already: \`weft lab heal ${k} ${host}\` first`, 'target');
}

/**
 * Heals a host or link fault: the link up again (or its packets let
 * through); for a host also its BIRD and agent started again and, after an
 * evacuation, the host active again in the API. Times the ToR's sessions
 * and routes to the host (and for a host every agent at the head).
 */
export async function healUnderlay(cloud: Cloud, f: Fault): Promise<FaultReport> {
  const overlay = cloud.routing.overlay;
  const host = f.target;
  const rack = overlay.host(host).lab.rack;
  const expect = expectedRoutes(cloud, f);
  const t0 = performance.now();
  // Watched from the start, while the steps below run; stopped if a step fails.
  const watch = { stopped: false };
  const sessions = timeUntil(
    t0,
    async () => {
      const ps = await cloud.routing.hostSessions(host);
      return ps.length === 2 && ps.every((p) => p.info.startsWith('Established'));
    },
    60_000,
    watch,
  );
  const routes = timeUntil(
    t0,
    async () => {
      const now = await cloud.routing.routesVia(rack, host);
      return expect.every((p) => now.includes(p));
    },
    60_000,
    watch,
  );
  const done: string[] = [];
  try {
    if (f.silent) {
      await overlay.lab.exec(overlay.host(host).lab.ns, 'nft', ['delete', 'table', 'netdev', SILENCE_TABLE]);
      done.push(`packets on ul0 of ${host} let through again`);
    } else {
      await overlay.lab.setUnderlay(host, true);
      done.push(`ul0 of ${host} up (its IPv6 address and default routes put back)`);
    }
    if (f.what === 'host') {
      await cloud.routing.restartBird(host);
      done.push(`BIRD of ${host} started on the config its agent last wrote`);
      await overlay.killAgent(host);
      await overlay.startAgent(host);
      done.push(`agent of ${host} started and connected`);
      if (f.downInApi) {
        await cloud.routing.api.patch(`/v1/hosts/${host}`, { state: 'active' });
        f.downInApi = false;
        f.evacuated = false;
        done.push(`${host} active again in the API (\`weft host update ${host} --state active\`): placement may use it`);
      }
    }
  } catch (e) {
    watch.stopped = true;
    throw e;
  }
  const timings: Timing[] = [];
  const [s, r] = await Promise.all([sessions, routes]);
  timings.push({ what: `ToR ${rack}: sessions to ${host} Established`, ms: s });
  timings.push({ what: `ToR ${rack} routes ${list(expect)} to ${host} again`, ms: r });
  if (f.what === 'host') {
    const at = await overlay
      .converged(30_000)
      .then(() => Math.round(performance.now() - t0))
      .catch(() => null);
    timings.push({ what: 'every agent at the head of the change log', ms: at });
  }
  const ok = timings.every((t) => t.ms !== null);
  if (ok) cloud.faults.delete(`${f.what} ${host}`);
  return {
    action: 'heal',
    what: f.what,
    target: host,
    done,
    timings,
    notes: [
      sessionsLine(host, await cloud.routing.hostSessions(host)),
      ...(await vipNotes(cloud, rack)),
      ...(ok ? [] : [`still counted as failed: \`weft lab heal ${f.what} ${host}\` again`]),
    ],
    commands: [],
    ok,
  };
}

/** The prefixes a healed host must be routed again: those of before, less routed instances and VIP backends no longer on it. */
function expectedRoutes(cloud: Cloud, f: Fault): string[] {
  const gone = new Set<string>();
  for (const w of cloud.web) {
    if (cloud.where(w.name) === f.target) continue;
    if (w.port.ipv4) gone.add(`${w.port.ipv4}/32`);
    if (w.port.ipv6) gone.add(`${w.port.ipv6}/128`);
  }
  const serves = cloud.web.some((w) => cloud.where(w.name) === f.target && cloud.backendServers.get(w.name));
  if (!serves) gone.add(`${cloud.vip}/32`);
  return f.routes.filter((p) => !gone.has(p));
}

/** How the ToR sees host `host`'s sessions, as one line of a report. */
export function sessionsLine(host: string, sessions: BirdProtocol[]): string {
  return `the ToR's sessions to ${host}: ${sessions.map((p) => `${p.name} ${(p.info || p.state).replace(/\s+/g, ' ')}`).join('; ')}`;
}
