// `weft lab fail backend NAME`: a VIP backend's HTTP server is killed, timed
// until the health check takes its host out of the VIP's next hops at its
// ToR; `heal` starts it again and times its return.
import { conflict, invalid } from '../../model/errors.js';
import type { Cloud } from '../cloud.js';
import { list, timeUntil } from '../measure.js';
import type { RoutedVm } from '../routing-lab.js';
import { type FaultReport, type FaultType, vipNotes } from './fault.js';

export const backendFault: FaultType = {
  summary: 'a VIP backend stops',
  target: backendArg,
  fail: (cloud, name) => failBackend(cloud, name),
  heal: (cloud, f) => healBackend(cloud, f.target),
};

async function failBackend(cloud: Cloud, name: string): Promise<FaultReport> {
  if (cloud.faults.has(`backend ${name}`)) throw conflict(`backend ${name} is failed already: \`weft lab heal backend ${name}\` first`, 'target');
  const host = cloud.where(name);
  if (cloud.dark(host)) throw conflict(`${name} is on ${host}, which is failed: heal it first`, 'target');
  const { rack, underlayIp } = cloud.routing.overlay.host(host).lab;
  const hops = () => cloud.routing.nextHops(rack, `${cloud.vip}/32`);
  if ((await timeUntil(performance.now(), async () => (await hops()).includes(underlayIp), 10_000)) === null)
    throw conflict(`the ToR ${rack} does not route the VIP ${cloud.vip} to ${host} (next hops: ${list(await hops())}): nothing to withdraw`, 'target');
  const s = cloud.backendServers.get(name);
  const t0 = performance.now();
  if (s && s.exitCode === null && s.signalCode === null) {
    const gone = new Promise((r) => s.once('exit', r));
    s.kill('SIGKILL');
    await gone;
  }
  cloud.backendServers.set(name, null);
  cloud.faults.set(`backend ${name}`, { what: 'backend', target: name, silent: false, routes: [] });
  const ms = await timeUntil(t0, async () => !(await hops()).includes(underlayIp), 15_000);
  return {
    action: 'fail',
    what: 'backend',
    target: name,
    done: [`HTTP server of ${name} (on ${host}) killed`],
    timings: [{ what: `${host} left the VIP's next hops at ToR ${rack} (target <= 1000 ms)`, ms }],
    notes: ['health check: HTTP GET :8080/ every 200 ms, down after 2 failures', ...(await vipNotes(cloud, rack))],
    commands: [],
    ok: ms !== null,
  };
}

async function healBackend(cloud: Cloud, name: string): Promise<FaultReport> {
  const host = cloud.where(name);
  const { rack, underlayIp } = cloud.routing.overlay.host(host).lab;
  const w = cloud.web.find((x) => x.name === name) as RoutedVm;
  const t0 = performance.now();
  cloud.backendServers.set(name, cloud.startBackend(w));
  const ms = await timeUntil(t0, async () => (await cloud.routing.nextHops(rack, `${cloud.vip}/32`)).includes(underlayIp), 30_000);
  if (ms !== null) cloud.faults.delete(`backend ${name}`);
  return {
    action: 'heal',
    what: 'backend',
    target: name,
    done: [`HTTP server of ${name} (on ${host}) started`],
    timings: [{ what: `${host} back in the VIP's next hops at ToR ${rack} (includes starting the server)`, ms }],
    notes: ['health check: up after 2 passes 200 ms apart; a backend that flaps is held down longer (damping)', ...(await vipNotes(cloud, rack))],
    commands: [],
    ok: ms !== null,
  };
}

function backendArg(cloud: Cloud, v: unknown): string {
  const names = cloud.web.map((w) => w.name);
  if (typeof v !== 'string' || !names.includes(v)) throw invalid('target', v, `must be a backend of the VIP: ${list(names)}`);
  return v;
}
