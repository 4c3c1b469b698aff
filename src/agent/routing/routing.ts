// The agent's routing loop: from the desired state and the VIP health
// checks to BIRD's running config, and the routed ports' host side and the
// VIP NAT (written by the Dataplane). One pass at a time; changes arriving
// meanwhile share the next pass.
// A config that changes BGP sessions is applied with an undo timer and
// confirmed only once the push stream shows the host still reaches the
// control plane; otherwise the agent rolls it back itself.

import { WeftError } from '../../model/errors.js';
import { type Log, quietLog } from '../../sys/log.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { AgentState } from '../state/agent-state.js';
import type { BgpStatus, Bird } from './bird.js';
import { protocolName, renderBirdConf } from './bird-conf.js';
import { HealthChecker, type Probe, type Timers } from './health.js';
import { type RoutingInputs, type RoutingSettings, routedPorts, routingInputs, vipBackends } from './inputs.js';

export interface RoutingOptions {
  state: AgentState;
  bird: Bird;
  /** Writes the routed ports' host side and the VIP NAT that a pass decides (the agent's Dataplane); null: none. */
  hostNet: Pick<Dataplane, 'applyRouted' | 'resetRouted'> | null;
  settings: RoutingSettings;
  /** True while the push stream is connected (a session change is confirmed only then). */
  connected: () => boolean;
  /** Time of the last message from the server (ms, Date.now clock). */
  lastHeard: () => number;
  /** How long a session-changing config may go unconfirmed before it is rolled back (default 30 s). */
  undoAfterMs?: number;
  /** How often BGP state is read back from BIRD (default 2 s). */
  pollMs?: number;
  probe?: Probe;
  timers?: Timers;
  log?: Log;
  /** Called after each status poll (metrics, the stream's status report). */
  onStatus?: (s: RoutingStatus) => void;
  /** The confirmed sessions, kept across restarts: a restarted agent still treats a session change as risky. */
  confirmedStore?: ConfirmedStore;
  /**
   * The config BIRD runs when the agent starts (a previous agent's): VIPs it
   * announces start out healthy, so an agent restart does not withdraw them
   * while the first checks run (a dead backend is still withdrawn after `fall`).
   */
  running?: string;
}

/** The VIP prefixes a bird.conf rendered by weft announces. */
export function announcedVips(conf: string): Set<string> {
  const out = new Set<string>();
  for (const m of conf.matchAll(/protocol static (?:weft_vips4|weft_vips6) \{([^}]*)\}/g))
    for (const r of (m[1] ?? '').matchAll(/route (\S+) blackhole;/g)) out.add(r[1] as string);
  return out;
}

/** What the agent knows of its routing, for /metrics, /healthz and the server's API. */
export interface RoutingStatus {
  /** BIRD answers on its control socket. */
  birdUp: boolean;
  /** The running config was rendered from the current inputs (false while BIRD refuses or cannot be reached). */
  inSync: boolean;
  lastError: string | null;
  configures: number;
  rejected: number;
  rollbacks: number;
  /** A session change waiting for confirmation. */
  pendingConfirm: boolean;
  sessions: (BgpStatus & { peerId: string | null })[];
  /** VIP addresses announced now. */
  announced: string[];
  backends: { key: string; vipId: string; address: string; healthy: boolean; suppressed: boolean; lastError: string | null }[];
}

/** The inputs that decide the BGP sessions (a change of them could cut the host off). */
export type SessionFields = Pick<RoutingInputs, 'asn' | 'routerId' | 'sessions' | 'bfd'>;
const sessionFields = (i: SessionFields): SessionFields => ({ asn: i.asn, routerId: i.routerId, sessions: i.sessions, bfd: i.bfd });
const sessionsKey = (i: SessionFields): string => JSON.stringify(sessionFields(i));

/** Where the confirmed sessions are kept across agent restarts (a file next to bird.conf, or memory in tests). */
export interface ConfirmedStore {
  load(): SessionFields | null;
  save(f: SessionFields): void;
}

/** Errors of a pass that are the host side's (nft, ip), retried apart from BIRD's. */
class HostNetError extends WeftError {}

const MIN_RETRY_REFUSED_MS = 60_000;
const MAX_RETRY_REFUSED_MS = 30 * 60_000;

export class Routing {
  readonly health: HealthChecker;
  private readonly log: Log;
  private running = false;
  private again = false;
  private stopped = false;
  /** The config BIRD runs, as far as the agent knows. */
  private applied: string | null = null;
  /** The sessions last known not to cut the host off: from the store at start, then from each confirm. */
  private confirmed: SessionFields | null;
  /** A session change applied but not yet confirmed: its sessions, when it was applied (wall clock, to compare with lastHeard) and its deadline (monotonic). */
  private pending: { key: string; fields: SessionFields; since: number; deadline: number } | null = null;
  /** Sessions rolled back: not applied again until they change, or until `retryAt` once the control plane is back. */
  private refused: { key: string; retryAt: number; backoffMs: number } | null = null;
  /** A config BIRD's parser refused: not retried until the inputs change. */
  private refusedConf: string | null = null;
  /** BIRD did not answer the last poll. */
  private unreachable = false;
  private lastInputs: RoutingInputs | null = null;
  private retryMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private confirmTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private readonly idle: (() => void)[] = [];
  private initialVips: Set<string>;
  readonly status: RoutingStatus = {
    birdUp: false,
    inSync: false,
    lastError: null,
    configures: 0,
    rejected: 0,
    rollbacks: 0,
    pendingConfirm: false,
    sessions: [],
    announced: [],
    backends: [],
  };

  constructor(private readonly o: RoutingOptions) {
    this.log = o.log ?? quietLog;
    this.initialVips = announcedVips(o.running ?? '');
    this.confirmed = o.confirmedStore?.load() ?? null;
    this.health = new HealthChecker({
      probe: o.probe,
      clock: o.timers,
      onChange: (key, healthy) => {
        this.log.info(healthy ? 'VIP backend healthy' : 'VIP backend unhealthy', { backend: key });
        this.update();
      },
    });
    const every = o.pollMs ?? 2000;
    if (every > 0) {
      this.pollTimer = setInterval(() => void this.poll(), every);
      this.pollTimer.unref();
    }
  }

  /** Something the routing depends on changed: run a pass (now, or right after the one running). */
  update(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  /** Resolves when no pass is running or queued (tests). */
  settled(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
        this.retryMs = 0;
      } catch (e) {
        this.status.lastError = (e as Error).message;
        this.log.warn('routing pass failed; retrying', { error: (e as Error).message });
        // The host side is rewritten only after its own failure (a rewrite resets its counters).
        if (e instanceof HostNetError) this.o.hostNet?.resetRouted();
        else this.status.inSync = false;
        this.scheduleRetry();
      }
    } while (this.again && !this.stopped);
    this.running = false;
    for (const r of this.idle.splice(0)) r();
  }

  private async pass(): Promise<void> {
    const s = this.o.state;
    const backends = vipBackends(s);
    this.health.set(
      new Map(
        backends.map((b) => [
          b.key,
          {
            target: { address: b.address, port: b.check.port, type: b.check.type, path: b.check.path },
            spec: { intervalMs: b.check.intervalMs, timeoutMs: b.check.timeoutMs, rise: b.check.rise, fall: b.check.fall },
            initiallyHealthy: this.initialVips.has(b.vip.includes(':') ? `${b.vip}/128` : `${b.vip}/32`),
          },
        ]),
      ),
    );
    // Only the first backends seen are taken as announced; later ones earn it with `rise` checks.
    if (backends.length > 0) this.initialVips = new Set();
    const healthy = (key: string) => this.health.healthy(key);
    const checks = new Map(this.health.status().map((x) => [x.key, x]));
    this.status.backends = backends.map((b) => {
      const h = checks.get(b.key);
      return { key: b.key, vipId: b.vipId, address: b.address, healthy: healthy(b.key), suppressed: h?.suppressed ?? false, lastError: h?.lastError ?? null };
    });
    const inputs = routingInputs(s, healthy, this.o.settings);
    if (!inputs) return;
    this.lastInputs = inputs;

    // Host side first (a routed instance's gateway exists before BIRD routes to it); its failure must not hold BIRD back.
    let hostError: HostNetError | null = null;
    if (this.o.hostNet) {
      const nat = new Map<string, string[]>();
      for (const b of backends) if (healthy(b.key)) nat.set(b.vip, [...(nat.get(b.vip) ?? []), b.address]);
      try {
        await this.o.hostNet.applyRouted(
          routedPorts(s).map((p) => ({ ifname: p.ifname, mtu: p.mtu })),
          [...nat].map(([vip, list]) => ({ vip, backends: list })),
        );
      } catch (e) {
        hostError = new HostNetError('E_DATAPLANE', `routed ports and VIP NAT: ${(e as Error).message}`, undefined, { cause: e });
      }
    }
    await this.applyBird(inputs);
    if (hostError) throw hostError;
  }

  private async applyBird(inputs: RoutingInputs): Promise<void> {
    const now = performance.now();
    // A session change that went unconfirmed too long is rolled back, and retried only later, with backoff.
    if (this.pending && now >= this.pending.deadline) {
      const backoffMs = this.refused?.key === this.pending.key ? Math.min(this.refused.backoffMs * 2, MAX_RETRY_REFUSED_MS) : MIN_RETRY_REFUSED_MS;
      this.refused = { key: this.pending.key, retryAt: now + backoffMs, backoffMs };
      this.pending = null;
      this.status.rollbacks++;
      this.log.warn('BGP session change rolled back: the control plane was not heard from after it', {
        waitedS: this.undoAfterMs() / 1000,
        retryInS: backoffMs / 1000,
      });
    }
    const wanted = sessionsKey(inputs);
    if (this.refused && (wanted !== this.refused.key || (now >= this.refused.retryAt && this.o.connected()))) {
      // Other sessions, or time to try these again now that the server is reachable (the backoff is kept for the key).
      if (wanted !== this.refused.key) this.refused = null;
      else this.refused.retryAt = Number.POSITIVE_INFINITY;
    }
    const holdBack = this.refused !== null && this.refused.retryAt !== Number.POSITIVE_INFINITY && this.confirmed !== null;
    let effective: RoutingInputs = holdBack && this.confirmed ? { ...inputs, ...this.confirmed } : inputs;
    let note: string | null = holdBack ? 'BGP session change rolled back: the control plane was not heard from after it; retried later' : null;

    let conf: string;
    try {
      conf = renderBirdConf(effective);
    } catch (e) {
      // Sessions the renderer refuses (two to one neighbour...) must not freeze VIPs and routes: keep the sessions BIRD runs.
      const msg = `cannot render bird.conf: ${(e as Error).message}`;
      if (this.status.lastError !== msg) {
        this.status.rejected++;
        this.log.warn('routing inputs refused; keeping the running sessions', { error: msg });
      }
      note = msg;
      const keep = this.pending?.fields ?? this.confirmed;
      if (!keep || effective !== inputs) return this.refuse(msg);
      effective = { ...inputs, ...keep };
      try {
        conf = renderBirdConf(effective);
      } catch {
        return this.refuse(msg);
      }
    }
    this.status.pendingConfirm = this.pending !== null;
    if (conf === this.applied || conf === this.refusedConf) {
      this.status.inSync = conf === this.applied && effective === inputs;
      if (conf === this.applied) this.status.lastError = note;
      return;
    }
    const key = sessionsKey(effective);
    const risky = this.confirmed !== null && key !== sessionsKey(this.confirmed);
    try {
      await this.o.bird.check(conf);
      // While sessions differ from the confirmed ones, BIRD's own undo stays armed (in case the agent dies too).
      await this.o.bird.configure(conf, risky ? { undoAfterS: Math.ceil(this.undoAfterMs() / 1000) + 5 } : {});
    } catch (e) {
      if ((e as { refused?: boolean }).refused) {
        // BIRD's parser said no: it keeps the running config; this one is not retried until the inputs change.
        this.refusedConf = conf;
        this.status.rejected++;
        this.log.warn('BIRD refused the rendered config; keeping the running one', { error: (e as Error).message });
        return this.refuse((e as Error).message);
      }
      throw e;
    }
    this.status.birdUp = true;
    this.unreachable = false;
    this.applied = conf;
    this.refusedConf = null;
    this.status.configures++;
    this.status.inSync = effective === inputs;
    this.status.lastError = note;
    this.status.announced = effective.vips;
    if (!risky) {
      this.confirm(sessionFields(effective));
      this.pending = null;
    } else if (this.pending?.key !== key) {
      this.pending = { key, fields: sessionFields(effective), since: Date.now(), deadline: performance.now() + this.undoAfterMs() };
      this.armConfirm();
    }
    this.status.pendingConfirm = this.pending !== null;
    this.log.info('BIRD reconfigured', { vips: effective.vips.length, routed: effective.routedAddrs.length, sessions: effective.sessions.length, undo: risky });
    void this.poll();
  }

  private refuse(msg: string): void {
    this.status.lastError = msg;
    this.status.inSync = false;
  }

  private confirm(fields: SessionFields): void {
    const changed = this.confirmed === null || sessionsKey(this.confirmed) !== sessionsKey(fields);
    this.confirmed = fields;
    if (changed) {
      try {
        this.o.confirmedStore?.save(fields);
      } catch (e) {
        this.log.warn('cannot save the confirmed BGP sessions', { error: (e as Error).message });
      }
    }
  }

  private undoAfterMs(): number {
    return this.o.undoAfterMs ?? 30_000;
  }

  /** Confirms a pending session change once the server has been heard after it; past the deadline, a pass rolls it back. */
  private armConfirm(): void {
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    const tick = () => {
      this.confirmTimer = null;
      const p = this.pending;
      if (!p || this.stopped) return;
      const again = (ms: number) => {
        this.confirmTimer = setTimeout(tick, ms);
        this.confirmTimer.unref();
      };
      if (performance.now() >= p.deadline) return this.update();
      // Not while a pass runs: it may be applying something else on top of the pending change.
      if (this.running || !(this.o.connected() && this.o.lastHeard() > p.since)) return again(250);
      this.o.bird.confirm().then(
        () => {
          if (this.pending !== p) return;
          this.pending = null;
          this.status.pendingConfirm = false;
          this.confirm(p.fields);
          if (this.refused?.key === p.key) this.refused = null;
          this.log.info('BGP session change confirmed: the control plane is still reachable');
        },
        (e) => {
          this.log.warn('BIRD confirm failed; retrying', { error: (e as Error).message });
          again(500);
        },
      );
    };
    this.confirmTimer = setTimeout(tick, 250);
    this.confirmTimer.unref();
  }

  /** Reads session state back from BIRD. */
  async poll(): Promise<void> {
    if (this.stopped) return;
    try {
      const list = await this.o.bird.sessions();
      const byName = new Map((this.lastInputs?.sessions ?? []).map((x) => [protocolName(x.id), x.id]));
      this.status.sessions = list.filter((x) => x.name.startsWith('up_')).map((x) => ({ ...x, peerId: byName.get(x.name) ?? null }));
      this.status.birdUp = true;
      if (this.unreachable) {
        // BIRD came back (maybe restarted on an older file): make sure it runs the current config.
        this.unreachable = false;
        this.applied = null;
        this.update();
      }
    } catch (e) {
      if (!this.unreachable) this.log.warn('BIRD cannot be reached', { error: (e as Error).message });
      this.unreachable = true;
      this.status.birdUp = false;
      // Nothing is known of sessions or announcements while BIRD does not answer: report none rather than stale ones.
      this.status.sessions = [];
      this.status.announced = [];
      this.applied = null;
    }
    this.o.onStatus?.(this.status);
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryMs = Math.min(Math.max(this.retryMs * 2, 250), 10_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.update();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.health.stop();
    for (const t of [this.retryTimer, this.confirmTimer]) if (t) clearTimeout(t);
    if (this.pollTimer) clearInterval(this.pollTimer);
  }
}
