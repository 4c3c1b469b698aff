// `weft lab fail server [N]`: a `weft server` replica is killed while a ping
// runs between two instances; timed until its agents reconnected elsewhere
// (or, alone, saw their streams close), and a change made meanwhile. `heal`
// starts it again on the same database and times the agents' return.
import { conflict, invalid } from '../../model/errors.js';
import type { Cloud } from '../cloud.js';
import { MOVE_PING_MS } from '../cloud-move.js';
import { list, sleep, timeUntil } from '../measure.js';
import type { AgentHealth, LabVm } from '../overlay-lab.js';
import { answerTiming, type Fault, type FaultReport, type FaultType, type PingWindow, type Timing } from './fault.js';

export const serverFault: FaultType = {
  summary: 'a `weft server` replica is killed',
  target: (cloud, v) => String(serverArg(cloud, v)),
  fail: (cloud, n) => failServer(cloud, Number(n)),
  heal: healServer,
};

/**
 * `fail server [N]`: replica N (default 1; the one server on SQLite) is
 * killed with SIGKILL while a ping every 10 ms runs between two instances
 * on different hosts (it keeps running until the heal). With another
 * replica running: the time until every agent of the killed one
 * reconnected to it and every agent is at the head, and an instance
 * created through it during the outage, timed until every agent applied
 * it and it answers. With none: the time until every agent saw its stream
 * close, and that a change tried meanwhile is refused (never acknowledged).
 */
async function failServer(cloud: Cloud, n: number): Promise<FaultReport> {
  const overlay = cloud.routing.overlay;
  if (cloud.faults.has(`server ${n}`)) throw conflict(`server ${n} is failed already: \`weft lab heal server ${n}\` first`, 'target');
  const dead = overlay.replica(n);
  const survivors = overlay.servers.filter((s) => s.n !== n && s.proc);
  const healths = await agentHealths(cloud);
  const on = [...healths].filter(([, h]) => h?.connected && h.server === dead.ip).map(([name]) => name);
  const pair = pingPair(cloud, healths, dead.ip);
  const what = (span: string): PingWindow => ({
    what: span,
    from: `${pair.from.name} (on ${cloud.where(pair.from.name)})`,
    to: `${pair.to.name} (on ${cloud.where(pair.to.name)}) ${pair.to.port.ipv4}`,
    intervalMs: MOVE_PING_MS,
    sent: 0,
    lost: 0,
  });
  const ping = () => overlay.pingLoop({ ns: overlay.vmNs(pair.from.name) }, pair.to.port.ipv4 as string, MOVE_PING_MS / 1000);
  const window = ping();
  const outage = { what: what(`from \`fail server ${n}\` until \`heal server ${n}\` completed`), loop: ping() };
  const done: string[] = [];
  const timings: Timing[] = [];
  const notes: string[] = [`before, server ${n} (${dead.ip}) had ${on.length} agents: ${list(on)}`];
  const pings: PingWindow[] = [];
  let ok = false;
  try {
    await sleep(300);
    const pid = dead.proc?.proc.pid;
    const t0 = performance.now();
    await overlay.killServer(n);
    done.push(`server ${n} (${dead.ip}, pid ${pid}) killed (SIGKILL)`);
    cloud.faults.set(`server ${n}`, { what: 'server', target: String(n), silent: false, routes: [], outage });
    const running = [...overlay.hosts.values()].filter((h) => h.agent).map((h) => h.name);
    if (survivors.length === 0) {
      const closed = await timeUntil(t0, async () => [...(await agentHealths(cloud)).values()].every((h) => h !== null && !h.connected), 15_000);
      timings.push({ what: `every agent (${running.length}) saw its push stream close`, ms: closed });
      const tried = await cloud.addInstance().then(
        (vm) => ({ ok: true as const, vm }),
        (e: Error) => ({ ok: false as const, error: e.message }),
      );
      if (tried.ok) notes.push(`UNEXPECTED: ${tried.vm.name} was created with no server running`);
      else
        notes.push(
          `a change during the outage (a new instance) was refused: ${tried.error}; it was never acknowledged, so nothing is lost (\`heal server ${n}\` makes one and times it)`,
        );
      notes.push('the agents keep the kernel state they hold: forwarding goes on; they retry with capped backoff (up to 5 s)');
      ok = closed !== null && !tried.ok;
    } else {
      const m = survivors[0] as (typeof survivors)[number];
      // Watched from the kill on, while the change below is made.
      const moved = timeUntil(
        t0,
        async () => {
          const hs = await agentHealths(cloud);
          return on.every((h) => hs.get(h)?.connected === true && hs.get(h)?.server !== dead.ip);
        },
        30_000,
      );
      const vm = await cloud.addInstance(m.n);
      done.push(
        `instance ${vm.name} created through server ${m.n} (${m.ip}) ${Math.round(performance.now() - t0)} ms after the kill, on ${cloud.where(vm.name)}`,
      );
      const head = (await m.api.get<{ head: number }>('/v1/changes?limit=1')).head;
      timings.push({ what: `the ${on.length} agents of server ${n} reconnected to another replica`, ms: await moved });
      const reached = await timeUntil(t0, () => allAt(cloud, head), 30_000);
      timings.push({ what: `every agent (${running.length}) at the head, version ${head} (with ${vm.name}'s port)`, ms: reached });
      const answers = await answerTiming(cloud, t0, vm);
      timings.push({ what: `${vm.name} answers ${answers.from} over IPv4 and IPv6`, ms: answers.ms });
      notes.push(`agents now: ${await placementLine(cloud)}`);
      ok = timings.every((t) => t.ms !== null);
    }
  } finally {
    const st = await window.stop();
    pings.push({ ...what(`from before the kill until this report`), sent: st.sent, lost: st.sent - st.received });
    if (!cloud.faults.has(`server ${n}`)) await outage.loop.stop();
  }
  const lost = pings.reduce((a, p) => a + p.lost, 0);
  notes.push(lost === 0 ? 'forwarding was not interrupted: no ping lost' : `FORWARDING INTERRUPTED: ${lost} pings lost`);
  return { action: 'fail', what: 'server', target: String(n), done, timings, notes, commands: [], pings, ok };
}

/**
 * `heal server N`: replica N started again on the same database, its API,
 * SVP and stream on the addresses and ports it had; the time until it
 * answers, until every agent is connected (on SQLite: to it) and at the
 * head, and an instance created through it, timed until every agent
 * applied it and it answers. Reports the pings of the whole outage.
 */
async function healServer(cloud: Cloud, f: Fault): Promise<FaultReport> {
  const overlay = cloud.routing.overlay;
  const n = Number(f.target);
  const s = overlay.replica(n);
  const done: string[] = [];
  const timings: Timing[] = [];
  const notes: string[] = [];
  const pings: PingWindow[] = [];
  const t0 = performance.now();
  let listening = 0;
  if (!s.proc) {
    await overlay.startServer(n);
    listening = Math.round(performance.now() - t0);
    timings.push({ what: `server ${n} listening (store opened, index loaded)`, ms: listening });
  }
  done.push(`server ${n} started again on the same database: API ${s.url}, SVP and stream on ${s.ip}`);
  const alone = overlay.servers.every((x) => x.n === n || !x.proc);
  const running = [...overlay.hosts.values()].filter((h) => h.agent).map((h) => h.name);
  const back = await timeUntil(
    t0,
    async () => [...(await agentHealths(cloud)).values()].every((h) => h?.connected === true && (!alone || h.server === s.ip)),
    60_000,
  );
  const after = back === null ? '' : ` (${back - listening} ms after it listened)`;
  timings.push({
    what: alone ? `every agent (${running.length}) reconnected to server ${n}${after}` : `every agent (${running.length}) connected`,
    ms: back,
  });
  if (alone) notes.push('agents retry a server that is gone with a backoff doubling to 5 s: after a long outage they come back up to 5 s after it listens');
  const head0 = (await s.api.get<{ head: number }>('/v1/changes?limit=1')).head;
  timings.push({ what: `every agent at the head, version ${head0}`, ms: await timeUntil(t0, () => allAt(cloud, head0), 30_000) });
  const vm = await cloud.addInstance(n);
  done.push(`instance ${vm.name} created through server ${n}, on ${cloud.where(vm.name)}`);
  const head = (await s.api.get<{ head: number }>('/v1/changes?limit=1')).head;
  timings.push({ what: `every agent applied it (version ${head})`, ms: await timeUntil(t0, () => allAt(cloud, head), 30_000) });
  const answers = await answerTiming(cloud, t0, vm);
  timings.push({ what: `${vm.name} answers ${answers.from} over IPv4 and IPv6`, ms: answers.ms });
  if (f.outage) {
    const st = await f.outage.loop.stop();
    pings.push({ ...f.outage.what, sent: st.sent, lost: st.sent - st.received });
    f.outage = undefined;
  }
  notes.push(`agents now: ${await placementLine(cloud)}`);
  if (!alone) notes.push('an agent stays on the replica it failed over to: it moves back only if that one fails');
  const lost = pings.reduce((a, p) => a + p.lost, 0);
  if (pings.length > 0)
    notes.push(lost === 0 ? 'forwarding was not interrupted: no ping lost during the outage' : `FORWARDING INTERRUPTED: ${lost} pings lost`);
  const ok = timings.every((t) => t.ms !== null);
  if (ok) cloud.faults.delete(`server ${n}`);
  else notes.push(`still counted as failed: \`weft lab heal server ${n}\` again`);
  return { action: 'heal', what: 'server', target: String(n), done, timings, notes, commands: [], pings, ok };
}

/** Each running agent's /healthz by host (null: it does not answer). */
async function agentHealths(cloud: Cloud): Promise<Map<string, AgentHealth | null>> {
  const overlay = cloud.routing.overlay;
  const hosts = [...overlay.hosts.values()].filter((h) => h.agent);
  const hs = await Promise.all(hosts.map((h) => overlay.health(h.name).catch(() => null)));
  return new Map(hosts.map((h, i) => [h.name, hs[i] ?? null]));
}

/** Every running agent has applied `version` (as the replicas that run report it). */
async function allAt(cloud: Cloud, version: number): Promise<boolean> {
  const overlay = cloud.routing.overlay;
  const a = await overlay.agents();
  return [...overlay.hosts.values()].filter((h) => h.agent).every((h) => (a.items.find((i) => i.hostId === h.hostId)?.appliedVersion ?? -1) >= version);
}

/** Which replica each agent is connected to, as one line. */
async function placementLine(cloud: Cloud): Promise<string> {
  const hs = await agentHealths(cloud);
  const by = new Map<string, string[]>();
  for (const [name, h] of hs) {
    const key = h?.connected ? `server ${cloud.routing.overlay.serverAt(h.server) ?? h.server}` : 'not connected';
    by.set(key, [...(by.get(key) ?? []), name]);
  }
  return [...by].map(([k, v]) => `${k}: ${v.join(', ')}`).join('; ');
}

/**
 * Two instances of one tenant on different working hosts to ping between
 * during a server fault: the pinger on a host whose agent is on replica
 * `ip` when there is one, the other on a host whose agent is not.
 */
function pingPair(cloud: Cloud, healths: Map<string, AgentHealth | null>, ip: string): { from: LabVm; to: LabVm } {
  const on = (v: LabVm) => healths.get(cloud.where(v.name))?.server === ip;
  const pairs: { from: LabVm; to: LabVm; score: number }[] = [];
  for (const a of cloud.vms)
    for (const b of cloud.vms) {
      const [ha, hb] = [cloud.where(a.name), cloud.where(b.name)];
      if (a === b || ha === hb || cloud.tenantOf.get(a.name) !== cloud.tenantOf.get(b.name) || cloud.dark(ha) || cloud.dark(hb)) continue;
      pairs.push({ from: a, to: b, score: (on(a) ? 2 : 0) + (on(b) ? 0 : 1) });
    }
  pairs.sort((x, y) => y.score - x.score);
  const p = pairs[0];
  if (!p) throw conflict('no two instances of one tenant on different working hosts to ping between', 'target');
  return p;
}

function serverArg(cloud: Cloud, v: unknown): number {
  const n = cloud.routing.overlay.servers.length;
  if (v === undefined || v === null || v === '') return 1;
  const k = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!(Number.isInteger(k) && k >= 1 && k <= n))
    throw invalid(
      'target',
      v,
      n === 1
        ? 'must be 1 or none: the lab runs one server (on SQLite)'
        : `must be a server replica, ${Array.from({ length: n }, (_, i) => i + 1).join(' or ')}, or none for 1`,
    );
  return k;
}
