// The agent's routing loop: from the desired state and the VIP health
// checks to BIRD's running config, the routed ports' host side and the VIP
// NAT. One pass at a time; changes arriving meanwhile share the next pass.
// A config that changes BGP sessions is applied with an undo timer and
// confirmed only once the push stream shows the host still reaches the
// control plane; otherwise the agent rolls it back itself.
import type { AgentState } from '../../stream/agent-state.js';
import type { AgentLog } from '../agent.js';
import type { BgpStatus, Bird } from './bird.js';
import { protocolName, renderBirdConf } from './bird-conf.js';
import { HealthChecker, type Probe, type Timers } from './health.js';
import type { HostNet } from './host-net.js';
import { type RoutingInputs, type RoutingSettings, routedPorts, routingInputs, vipBackends } from './inputs.js';

export interface RoutingOptions {
  state: AgentState;
  bird: Bird;
  hostNet: HostNet | null;
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
  log?: AgentLog;
  /** Called after each status poll (metrics, the stream's status report). */
  onStatus?: (s: RoutingStatus) => void;
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

const quiet: AgentLog = { info() {}, warn() {} };

export class Routing {
  readonly health: HealthChecker;
  private readonly log: AgentLog;
  private running = false;
  private again = false;
  private stopped = false;
  /** The config BIRD runs, as far as the agent knows. */
  private applied: string | null = null;
  /** The session part of the last config known not to cut the host off (null until the first apply). */
  private confirmed: SessionFields | null = null;
  private confirmedKey: string | null = null;
  /** A session change applied but not yet confirmed. */
  private pending: { key: string; since: number } | null = null;
  /** Sessions rolled back once: not applied again until they change. */
  private refusedSessions: string | null = null;
  /** A config BIRD's parser refused: not retried until the inputs change. */
  private refusedConf: string | null = null;
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
    this.log = o.log ?? quiet;
    this.initialVips = announcedVips(o.running ?? '');
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
        this.status.inSync = false;
        this.status.lastError = (e as Error).message;
        this.log.warn('routing pass failed; retrying', { error: (e as Error).message });
        this.hostNetReset();
        this.scheduleRetry();
      }
    } while (this.again && !this.stopped);
    this.running = false;
    for (const r of this.idle.splice(0)) r();
  }

  private hostNetReset(): void {
    this.o.hostNet?.reset();
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

    // Host side first: a routed instance's gateway exists before BIRD routes to it.
    if (this.o.hostNet) {
      const nat = new Map<string, string[]>();
      for (const b of backends) if (healthy(b.key)) nat.set(b.vip, [...(nat.get(b.vip) ?? []), b.address]);
      await this.o.hostNet.apply(
        routedPorts(s).map((p) => ({ ifname: p.ifname, mtu: p.mtu })),
        [...nat].map(([vip, list]) => ({ vip, backends: list })),
      );
    }

    // A session change that went unconfirmed too long is rolled back, and not tried again until the sessions change.
    const wanted = sessionsKey(inputs);
    if (this.pending && Date.now() - this.pending.since >= this.undoAfterMs()) {
      this.refusedSessions = this.pending.key;
      this.pending = null;
      this.status.rollbacks++;
      this.status.lastError = `BGP session change rolled back: the control plane was not heard from within ${this.undoAfterMs() / 1000} s after it`;
      this.log.warn(this.status.lastError);
    }
    if (this.refusedSessions !== null && wanted !== this.refusedSessions) this.refusedSessions = null;
    const effective = this.refusedSessions !== null && this.confirmed ? { ...inputs, ...this.confirmed } : inputs;
    let conf: string;
    try {
      conf = renderBirdConf(effective);
    } catch (e) {
      // Inputs the renderer refuses (two sessions to one neighbour, a bad IRR entry...): report, keep BIRD's config, wait for a change.
      const msg = `cannot render bird.conf: ${(e as Error).message}`;
      if (this.status.lastError !== msg) {
        this.status.rejected++;
        this.log.warn('routing inputs refused; keeping the running BIRD config', { error: msg });
      }
      this.status.lastError = msg;
      this.status.inSync = false;
      return;
    }
    this.status.pendingConfirm = this.pending !== null;
    if (conf === this.applied || conf === this.refusedConf) {
      this.status.inSync = conf === this.applied && effective === inputs;
      if (this.status.inSync) {
        this.status.lastError = null;
        this.refusedConf = null;
      }
      return;
    }
    const key = sessionsKey(effective);
    const risky = this.confirmed !== null && key !== this.confirmedKey;
    try {
      await this.o.bird.check(conf);
      // While sessions differ from the confirmed ones, BIRD's own undo stays armed (in case the agent dies too).
      await this.o.bird.configure(conf, risky ? { undoAfterS: Math.ceil(this.undoAfterMs() / 1000) + 5 } : {});
    } catch (e) {
      const msg = (e as Error).message;
      if (/refused the config|did not reconfigure/.test(msg)) {
        // BIRD's parser said no: it keeps the running config; this one is not retried until the inputs change.
        this.refusedConf = conf;
        this.status.rejected++;
        this.status.lastError = msg;
        this.status.inSync = false;
        this.log.warn('BIRD refused the rendered config; keeping the running one', { error: msg });
        return;
      }
      this.status.birdUp = false;
      throw e;
    }
    this.status.birdUp = true;
    this.applied = conf;
    this.refusedConf = null;
    this.status.configures++;
    this.status.inSync = effective === inputs;
    if (effective === inputs) this.status.lastError = null;
    this.status.announced = effective.vips;
    if (!risky) {
      this.confirmed = sessionFields(effective);
      this.confirmedKey = key;
      this.pending = null;
    } else if (this.pending?.key !== key) {
      this.pending = { key, since: Date.now() };
      this.armConfirm();
    }
    this.status.pendingConfirm = this.pending !== null;
    this.log.info('BIRD reconfigured', { vips: effective.vips.length, routed: effective.routedAddrs.length, sessions: effective.sessions.length, undo: risky });
    void this.poll();
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
      if (Date.now() - p.since >= this.undoAfterMs()) return this.update();
      if (!(this.o.connected() && this.o.lastHeard() > p.since)) return again(250);
      const running = this.lastInputs;
      this.o.bird.confirm().then(
        () => {
          if (this.pending !== p) return;
          this.pending = null;
          this.status.pendingConfirm = false;
          this.confirmedKey = p.key;
          if (running) this.confirmed = sessionFields(running);
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
      if (!this.status.birdUp) {
        this.status.birdUp = true;
        // BIRD came (back): make sure it runs our config.
        this.applied = null;
        this.update();
      }
    } catch (e) {
      if (this.status.birdUp) this.log.warn('BIRD cannot be reached', { error: (e as Error).message });
      this.status.birdUp = false;
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

/** The inputs that decide the BGP sessions (a change of them could cut the host off). */
type SessionFields = Pick<RoutingInputs, 'asn' | 'routerId' | 'sessions' | 'bfd'>;
const sessionFields = (i: RoutingInputs): SessionFields => ({ asn: i.asn, routerId: i.routerId, sessions: i.sessions, bfd: i.bfd });
const sessionsKey = (i: RoutingInputs): string => JSON.stringify(sessionFields(i));
