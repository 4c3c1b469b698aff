// `weft lab move`: an instance live-migrated through the API while a ping
// every 10 ms runs to it, and what that measured (the blackout, the time
// until every agent applied the move).
import { conflict, invalid } from '../model/errors.js';
import type { Cloud } from './cloud.js';
import { GUEST_NAME } from './guest.js';
import { list, sleep, timeUntil } from './measure.js';
import type { LabVm } from './overlay-lab.js';

/** The ping interval of a move's blackout measure, and the blackout target (DESIGN.md). */
export const MOVE_PING_MS = 10;
export const MOVE_TARGET_MS = 100;

/** What `Cloud.move` measured. */
export interface MoveReport {
  instance: string;
  kind: 'overlay' | 'routed' | 'qemu';
  from: string;
  to: string;
  /** Where the pings came from: another instance of the tenant on another host, or the lab's client behind the WAN router. */
  pingFrom: string;
  pingTo: string;
  intervalMs: number;
  sent: number;
  received: number;
  lost: number;
  /** lost x intervalMs. */
  blackoutMs: number;
  targetMs: number;
  /** From the migrate call until every agent applied the move (API, link switch-over, agents). */
  moveMs: number;
  /** The instance answered the pinger over IPv4 and IPv6 from its new host. */
  answers: boolean;
  /** The move completed and the instance answers; the blackout is reported, not judged. */
  ok: boolean;
  notes: string[];
}

/**
 * Live-migrates `instance` (an overlay VM or a routed `web*` VM) through
 * the API, to host `to` or where the server's placement picks, and
 * switches its VM's link over, while a ping every 10 ms runs to it: from
 * another instance of its tenant on another host, or for a routed VM from
 * the client behind the core. Waits until every agent applied the move and
 * the instance answers over IPv4 and IPv6. Throws E_INVALID_ARG for an
 * unknown instance or host (naming the valid ones) or `to` its own host,
 * E_CONFLICT for a failed target host or no instance to ping from.
 */
export async function moveInstance(cloud: Cloud, instance: unknown, to?: unknown): Promise<MoveReport> {
  const overlay = cloud.routing.overlay;
  const name = cloud.instanceArg('instance', instance);
  cloud.needServer();
  const from = cloud.where(name);
  let target: string | undefined;
  if (to !== undefined && to !== null && to !== '') {
    target = cloud.hostArg('to', to);
    if (target === from)
      throw invalid(
        'to',
        target,
        `is where ${name} is already: one of ${list([...overlay.hosts.keys()].filter((h) => h !== from))}, or none to let the server pick`,
      );
    cloud.usable('to', target);
  }
  const routed = cloud.web.find((w) => w.name === name);
  const guest = name === GUEST_NAME ? cloud.guest : null;
  const port = guest ? guest.port : (routed ?? (overlay.vms.get(name) as LabVm)).port;
  let pingNs: string;
  let pingFrom: string;
  if (routed) {
    pingNs = cloud.routing.clientNs;
    pingFrom = `client (behind the ${cloud.routing.top} router)`;
  } else {
    const tenant = cloud.tenantOf.get(name);
    const peers = cloud.vms.filter(
      (v) => v.name !== name && cloud.tenantOf.get(v.name) === tenant && cloud.where(v.name) !== from && !cloud.dark(cloud.where(v.name)),
    );
    const pick = peers.find((v) => cloud.where(v.name) !== target) ?? peers[0];
    if (!pick) throw conflict(`no other instance of tenant ${tenant} on a working host other than ${from} to ping ${name} from`, 'instance');
    pingNs = overlay.vmNs(pick.name);
    pingFrom = `${pick.name} (on ${cloud.where(pick.name)})`;
  }
  const ip4 = port.ipv4 as string;
  const notes: string[] = [];
  if (cloud.dark(from)) notes.push(`${from} is failed: the instance was unreachable before the move too`);
  const loop = overlay.pingLoop({ ns: pingNs }, ip4, MOVE_PING_MS / 1000);
  let dest = from;
  let moveMs = 0;
  let answers = false;
  let stats: { sent: number; received: number };
  try {
    await sleep(300);
    const t0 = performance.now();
    if (guest) {
      const m = await cloud.moveGuest(target);
      dest = m.host;
      notes.push(
        `a real VM (qemu): live-migrated by qemu in ${m.migrationMs} ms after the API's migrate, as an agent on shared storage would (the guest ran on the old host meanwhile)`,
      );
    } else dest = routed ? await cloud.routing.moveRouted(name, target) : await overlay.move(name, target);
    await overlay.converged(30_000);
    moveMs = Math.round(performance.now() - t0);
    const families = [ip4, port.ipv6].filter((ip): ip is string => !!ip);
    const answered = await timeUntil(performance.now(), async () => (await Promise.all(families.map((ip) => cloud.ping(pingNs, ip)))).every(Boolean), 10_000);
    answers = answered !== null;
    await sleep(300);
  } finally {
    stats = await loop.stop();
  }
  if (routed)
    notes.push(
      `a routed instance moves with its /32 and /128: the blackout includes BGP from the new host through the ToRs, ${cloud.routing.pathUp(overlay.host(dest).lab.rack).slice(1).join(' and ')}`,
    );
  if (!answers) notes.push(`${name} did not answer ${pingFrom} on ${dest} within 10 s`);
  if (!target && cloud.dark(dest))
    notes.push(`the server placed ${name} on ${dest}, which is failed: it still counts it active (\`weft host update ${dest} --state down\`)`);
  const lost = stats.sent - stats.received;
  return {
    instance: name,
    kind: guest ? 'qemu' : routed ? 'routed' : 'overlay',
    from,
    to: dest,
    pingFrom,
    pingTo: ip4,
    intervalMs: MOVE_PING_MS,
    sent: stats.sent,
    received: stats.received,
    lost,
    blackoutMs: lost * MOVE_PING_MS,
    targetMs: MOVE_TARGET_MS,
    moveMs,
    answers,
    ok: answers && dest !== from,
    notes,
  };
}
