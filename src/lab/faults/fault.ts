// What every fault of `weft lab fail|heal` shares: the kinds, the record of a
// fault in place, the report, the contract each kind's file implements, and
// the measurements several kinds (and the evacuation) take.
import type { Cloud } from '../cloud.js';
import { list, timeUntil } from '../measure.js';
import type { LabVm } from '../overlay-lab.js';
import type { RoutedVm } from '../routing-lab.js';

/** What `weft lab fail` and `heal` act on. */
export type FaultKind = 'host' | 'backend' | 'link' | 'server';

/** One measured reaction: ms from the fault (or heal) until it was seen, null if not within the wait. */
export interface Timing {
  what: string;
  ms: number | null;
}

/** What `Cloud.fail` or `Cloud.heal` did and measured. */
export interface FaultReport {
  action: 'fail' | 'heal';
  what: FaultKind;
  target: string;
  /** What was done, in order. */
  done: string[];
  timings: Timing[];
  notes: string[];
  /** What an operator would run now (after `fail host`: the server is not told). */
  commands: string[];
  /** Continuous pings between instances (server faults): forwarding while the control plane was down. */
  pings?: PingWindow[];
  /** Every timing was met. */
  ok: boolean;
}

/** A ping every `intervalMs` from one instance to another over a stretch of time, and what it lost. */
export interface PingWindow {
  what: string;
  from: string;
  to: string;
  intervalMs: number;
  sent: number;
  lost: number;
}

/** A fault in place (`Cloud.faults`, keyed `<kind> <target>`): what `heal` must undo and what it waits for. */
export interface Fault {
  what: FaultKind;
  target: string;
  /** `fail link --silent`: packets dropped, carrier kept. */
  silent: boolean;
  /** The prefixes the ToR routed to the host before (host and link faults). */
  routes: string[];
  /** `fail server`: the ping kept running from the fault until its heal. */
  outage?: { what: PingWindow; loop: { stop(): Promise<{ sent: number; received: number }> } };
  /** `fail host`: `weft lab evacuate` set it down in the API (its heal sets it active again). */
  downInApi?: boolean;
  /** `fail host`: `weft lab evacuate` moved every instance away. */
  evacuated?: boolean;
}

/**
 * One kind of fault, as its file in this folder implements it and the
 * table in index.ts registers it (the CLI's `fail|heal <what>` reads that
 * table). `target` checks the target against the lab and returns the name
 * the fault is keyed by; `fail` injects the fault (recording it in
 * `cloud.faults`) and times the reaction; `heal` undoes a recorded fault,
 * times the recovery and removes the record once every timing was met.
 * Neither is idempotent: `fail` throws E_CONFLICT when the fault is in
 * place already, and `index.ts` refuses a heal of what is not failed.
 */
export interface FaultType {
  /** What it does, for `weft lab fail --help` (after `<kind>: `). */
  readonly summary: string;
  /** Takes `fail --silent`. */
  readonly silent?: boolean;
  /** The target, checked: throws E_INVALID_ARG naming the valid ones. */
  target(cloud: Cloud, v: unknown): string;
  fail(cloud: Cloud, target: string, o: { silent: boolean }): Promise<FaultReport>;
  heal(cloud: Cloud, fault: Fault): Promise<FaultReport>;
}

/** Ms since `t0` until `vm` answers over IPv4 and IPv6 (overlay: from another instance of its tenant on a working host; routed: from the client), null after 30 s. */
export async function answerTiming(cloud: Cloud, t0: number, vm: LabVm | RoutedVm): Promise<{ from: string; ms: number | null }> {
  const routed = cloud.web.some((w) => w.name === vm.name);
  const ips = [vm.port.ipv4, vm.port.ipv6].filter((ip): ip is string => !!ip);
  let from = routed ? `the client (behind the ${cloud.routing.top} router)` : 'no peer';
  const ms = await timeUntil(
    t0,
    async () => {
      let ns = cloud.routing.clientNs;
      if (!routed) {
        const here = cloud.where(vm.name);
        const peers = cloud.vms.filter(
          (v) => v.name !== vm.name && cloud.tenantOf.get(v.name) === cloud.tenantOf.get(vm.name) && !cloud.dark(cloud.where(v.name)),
        );
        const peer = peers.find((v) => cloud.where(v.name) !== here) ?? peers[0];
        if (!peer) return false;
        from = `${peer.name} (on ${cloud.where(peer.name)})`;
        ns = cloud.routing.overlay.vmNs(peer.name);
      }
      return (await Promise.all(ips.map((ip) => cloud.ping(ns, ip)))).every(Boolean);
    },
    30_000,
  );
  return { from, ms };
}

/** The VIP's next hops on every router from `rack` up to the client: the ToR, its spine, the WAN router (or the core). */
export async function vipNotes(cloud: Cloud, rack: string): Promise<string[]> {
  const path = cloud.routing.pathUp(rack);
  const hops = await Promise.all(path.map((n) => cloud.routing.nextHops(n, `${cloud.vip}/32`)));
  const role = (i: number) => (i === 0 ? 'ToR' : i === path.length - 1 ? (cloud.routing.top === 'wan' ? 'WAN' : 'core') : 'spine');
  return [`VIP ${cloud.vip} next hops now: ${path.map((n, i) => `${role(i)} ${n} ${list(hops[i] as string[])}`).join('; ')}`];
}
