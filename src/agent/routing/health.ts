// Health checks of anycast VIP backends: the host agent announces a VIP over
// BGP only while a check of one of its local backends passes. A rise/fall
// state machine with flap damping per target, over injected probes and timers.
import http from 'node:http';
import net from 'node:net';
import { invalid } from '../../model/errors.js';

/** What one check connects to: `path` is used by http checks only (`/` when null). */
export interface ProbeTarget {
  address: string;
  port: number;
  type: 'tcp' | 'http';
  path: string | null;
}

/** The outcome of one probe: `error` is a short reason (`ECONNREFUSED`, `HTTP 503`), `ms` how long it took. */
export interface ProbeResult {
  ok: boolean;
  error?: string;
  ms: number;
}

/**
 * One check of a target. It must settle within about `timeoutMs` and release
 * everything it opened: the checker never starts the next probe of a target
 * before the previous one settled. A rejection counts as a failure.
 */
export type Probe = (t: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;

/** Time and timers, injected so that the state machine runs on a fake clock in tests. */
export interface Timers {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers on the monotonic clock; they do not keep the process alive. */
export const systemTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

function errorText(e: unknown): string {
  if (e instanceof Error) return (e as NodeJS.ErrnoException).code ?? e.message;
  return String(e);
}

/** IPv6 literals go in brackets in URLs and Host headers. */
function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function probeTcp(t: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const start = performance.now();
  return new Promise((resolve) => {
    let done = false;
    let sock: net.Socket | null = null;
    const finish = (error: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock?.destroy();
      const ms = performance.now() - start;
      resolve(error === null ? { ok: true, ms } : { ok: false, error, ms });
    };
    const timer = setTimeout(() => finish(`timeout after ${timeoutMs} ms`), timeoutMs);
    try {
      sock = net.connect({ host: t.address, port: t.port });
    } catch (e) {
      finish(errorText(e));
      return;
    }
    sock.once('connect', () => finish(null));
    // Stays attached: errors after the outcome (a reset while closing) must not go unhandled.
    sock.on('error', (e) => finish(errorText(e)));
  });
}

function probeHttp(t: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const start = performance.now();
  return new Promise((resolve) => {
    let done = false;
    let req: http.ClientRequest | null = null;
    let res: http.IncomingMessage | null = null;
    const finish = (error: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // The body is not needed; destroying both closes the connection (no agent, no keep-alive).
      res?.destroy();
      req?.destroy();
      const ms = performance.now() - start;
      resolve(error === null ? { ok: true, ms } : { ok: false, error, ms });
    };
    const timer = setTimeout(() => finish(`timeout after ${timeoutMs} ms`), timeoutMs);
    const authority = hostPort(t.address, t.port);
    try {
      req = http.get(`http://${authority}${t.path ?? '/'}`, {
        agent: false,
        headers: { Host: authority, Connection: 'close', 'User-Agent': 'weft-health-check' },
      });
    } catch (e) {
      finish(errorText(e));
      return;
    }
    req.on('response', (r) => {
      res = r;
      r.on('error', () => {});
      const status = r.statusCode ?? 0;
      finish(status >= 200 && status < 400 ? null : `HTTP ${status}`);
    });
    req.on('error', (e) => finish(errorText(e)));
  });
}

/**
 * The probe of the host agent. tcp: a connection is accepted within the
 * timeout. http: GET `http://<address>:<port><path>` answers 2xx or 3xx within
 * the timeout. Never rejects; every socket is closed when it resolves.
 */
export const realProbe: Probe = (t, timeoutMs) => (t.type === 'http' ? probeHttp(t, timeoutMs) : probeTcp(t, timeoutMs));

/** When and how often to probe (the `HealthCheck` of a VIP without its target). */
export interface HealthSpec {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive successes that make an unhealthy target healthy. */
  rise: number;
  /** Consecutive failures that make a healthy target unhealthy. */
  fall: number;
}

export interface CheckedTarget {
  target: ProbeTarget;
  spec: HealthSpec;
  /** The state before the first verdict (default unhealthy); only read when the target is added. */
  initiallyHealthy?: boolean;
}

/**
 * Route flap damping in the manner of RFC 2439. Each change of the probed
 * state adds `penalty`, which halves every `halfLifeMs`; above `suppressAt`
 * the target is reported unhealthy until the penalty has decayed to
 * `reuseAt`. The penalty is capped so that no suppression outlasts the last
 * flap by more than `maxSuppressMs`. `penalty: 0` turns damping off. The
 * first verdict after a target is added only replaces the initial guess and
 * adds nothing, so one failure and recovery costs 2 × penalty.
 */
export interface DampingOptions {
  penalty?: number;
  halfLifeMs?: number;
  suppressAt?: number;
  reuseAt?: number;
  maxSuppressMs?: number;
}

export const DEFAULT_DAMPING: Readonly<Required<DampingOptions>> = {
  penalty: 1000,
  halfLifeMs: 30_000,
  suppressAt: 3000,
  reuseAt: 750,
  maxSuppressMs: 120_000,
};

/** One target's state, for metrics. */
export interface TargetStatus {
  key: string;
  /** The reported state: what `healthy(key)` returns. */
  healthy: boolean;
  /** Held unhealthy by damping, whatever the probes say. */
  suppressed: boolean;
  /** The damping penalty now (rounded). */
  penalty: number;
  consecutiveOk: number;
  consecutiveFail: number;
  lastError: string | null;
  lastMs: number | null;
  /** Probes completed and failed since the target was added (not reset by a restart). */
  checks: number;
  failures: number;
}

export interface HealthCheckerOptions {
  probe?: Probe;
  clock?: Timers;
  /**
   * Called on every change of the reported state, never for the initial
   * state. It may call `set` or `stop`; if it throws, the error is ignored.
   */
  onChange: (key: string, healthy: boolean) => void;
  damping?: DampingOptions;
}

interface Entry {
  key: string;
  target: ProbeTarget;
  spec: HealthSpec;
  /** False once the target is removed: its late results and timers do nothing. */
  live: boolean;
  /** The probed state, from rise and fall. */
  raw: boolean;
  /** What was last reported: raw unless suppressed. */
  reported: boolean;
  /** Whether a verdict was ever reached: the first one settles the initial guess and is not a flap. */
  judged: boolean;
  suppressed: boolean;
  penalty: number;
  penaltyAt: number;
  consecutiveOk: number;
  consecutiveFail: number;
  lastError: string | null;
  lastMs: number | null;
  checks: number;
  failures: number;
  /** Bumped by a restart: results of probes started before it are dropped. */
  gen: number;
  inflight: boolean;
  next: unknown | null;
  reuse: unknown | null;
}

function sameTarget(a: ProbeTarget, b: ProbeTarget): boolean {
  return a.address === b.address && a.port === b.port && a.type === b.type && a.path === b.path;
}

function sameSpec(a: HealthSpec, b: HealthSpec): boolean {
  return a.intervalMs === b.intervalMs && a.timeoutMs === b.timeoutMs && a.rise === b.rise && a.fall === b.fall;
}

function checkTarget(key: string, c: CheckedTarget): void {
  const { target: t, spec: s } = c;
  if (t.type !== 'tcp' && t.type !== 'http') throw invalid(`${key}.type`, t.type, 'must be tcp or http');
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw invalid(`${key}.port`, t.port, 'must be 1..65535');
  if (net.isIP(t.address) === 0) throw invalid(`${key}.address`, t.address, 'must be an IPv4 or IPv6 address');
  for (const f of ['intervalMs', 'timeoutMs'] as const)
    if (!Number.isFinite(s[f]) || s[f] <= 0) throw invalid(`${key}.${f}`, s[f], 'must be a positive number of milliseconds');
  for (const f of ['rise', 'fall'] as const) if (!Number.isInteger(s[f]) || s[f] < 1) throw invalid(`${key}.${f}`, s[f], 'must be an integer >= 1');
}

function dampingOptions(o: DampingOptions | undefined): Required<DampingOptions> {
  const D = DEFAULT_DAMPING;
  const d: Required<DampingOptions> = {
    penalty: o?.penalty ?? D.penalty,
    halfLifeMs: o?.halfLifeMs ?? D.halfLifeMs,
    suppressAt: o?.suppressAt ?? D.suppressAt,
    reuseAt: o?.reuseAt ?? D.reuseAt,
    maxSuppressMs: o?.maxSuppressMs ?? D.maxSuppressMs,
  };
  if (!(d.penalty >= 0)) throw invalid('damping.penalty', d.penalty, 'must be >= 0');
  if (!(d.halfLifeMs > 0)) throw invalid('damping.halfLifeMs', d.halfLifeMs, 'must be > 0');
  if (!(d.reuseAt > 0)) throw invalid('damping.reuseAt', d.reuseAt, 'must be > 0');
  if (!(d.suppressAt >= d.reuseAt)) throw invalid('damping.suppressAt', d.suppressAt, `must be >= reuseAt (${d.reuseAt})`);
  const least = d.halfLifeMs * Math.log2(d.suppressAt / d.reuseAt);
  if (d.penalty > 0 && !(d.maxSuppressMs > least))
    throw invalid('damping.maxSuppressMs', d.maxSuppressMs, `must exceed ${Math.ceil(least)} ms, or the penalty can never reach suppressAt`);
  return d;
}

/**
 * Checks a set of targets and reports when each becomes healthy or
 * unhealthy. A target starts unhealthy (or `initiallyHealthy`), turns healthy
 * after `rise` consecutive successful probes and unhealthy after `fall`
 * consecutive failures; damping holds a flapping target unhealthy. The first
 * probe runs when the target is added; each next one `intervalMs` after the
 * previous one started, or when it settled if that was later. Nothing here
 * throws from a timer.
 */
export class HealthChecker {
  private readonly probe: Probe;
  private readonly clock: Timers;
  private readonly onChange: (key: string, healthy: boolean) => void;
  private readonly damping: Required<DampingOptions>;
  /** The highest penalty: it decays to reuseAt in maxSuppressMs. */
  private readonly ceiling: number;
  private readonly entries = new Map<string, Entry>();

  constructor(o: HealthCheckerOptions) {
    this.probe = o.probe ?? realProbe;
    this.clock = o.clock ?? systemTimers;
    this.onChange = o.onChange;
    this.damping = dampingOptions(o.damping);
    this.ceiling = this.damping.reuseAt * 2 ** (this.damping.maxSuppressMs / this.damping.halfLifeMs);
  }

  /**
   * Makes the checked set exactly `targets` (idempotent). New keys start with
   * a probe at once; removed keys stop and report nothing more; a key whose
   * target or spec changed restarts its probes and keeps its health and
   * penalty; equal keys are left alone. Throws E_INVALID_ARG, changing
   * nothing, if an entry is invalid.
   */
  set(targets: ReadonlyMap<string, CheckedTarget>): void {
    for (const [key, c] of targets) checkTarget(key, c);
    for (const [key, e] of this.entries) {
      if (targets.has(key)) continue;
      this.entries.delete(key);
      this.halt(e);
    }
    for (const [key, c] of targets) {
      const target = { ...c.target };
      const spec = { intervalMs: c.spec.intervalMs, timeoutMs: c.spec.timeoutMs, rise: c.spec.rise, fall: c.spec.fall };
      const e = this.entries.get(key);
      if (!e) {
        const up = c.initiallyHealthy ?? false;
        const fresh: Entry = {
          key,
          target,
          spec,
          live: true,
          raw: up,
          reported: up,
          judged: false,
          suppressed: false,
          penalty: 0,
          penaltyAt: this.clock.now(),
          consecutiveOk: 0,
          consecutiveFail: 0,
          lastError: null,
          lastMs: null,
          checks: 0,
          failures: 0,
          gen: 0,
          inflight: false,
          next: null,
          reuse: null,
        };
        this.entries.set(key, fresh);
        this.run(fresh);
      } else if (!sameTarget(e.target, target) || !sameSpec(e.spec, spec)) {
        e.target = target;
        e.spec = spec;
        this.restart(e);
      }
    }
  }

  /** The reported state of a target; false for an unknown key. */
  healthy(key: string): boolean {
    return this.entries.get(key)?.reported ?? false;
  }

  /** Every target's state, sorted by key. */
  status(): TargetStatus[] {
    const now = this.clock.now();
    return [...this.entries.values()]
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((e) => ({
        key: e.key,
        healthy: e.reported,
        suppressed: e.suppressed,
        penalty: Math.round(this.penaltyAt(e, now)),
        consecutiveOk: e.consecutiveOk,
        consecutiveFail: e.consecutiveFail,
        lastError: e.lastError,
        lastMs: e.lastMs,
        checks: e.checks,
        failures: e.failures,
      }));
  }

  /** Stops every check; no callback follows. A later `set` starts afresh. */
  stop(): void {
    for (const e of this.entries.values()) this.halt(e);
    this.entries.clear();
  }

  private halt(e: Entry): void {
    e.live = false;
    this.cancel(e);
    if (e.reuse !== null) this.clock.clearTimeout(e.reuse);
    e.reuse = null;
  }

  private cancel(e: Entry): void {
    if (e.next !== null) this.clock.clearTimeout(e.next);
    e.next = null;
  }

  private restart(e: Entry): void {
    e.gen++;
    e.consecutiveOk = 0;
    e.consecutiveFail = 0;
    this.cancel(e);
    // A probe in flight is let finish (its result dropped) so that probes never overlap.
    if (!e.inflight) this.run(e);
  }

  private run(e: Entry): void {
    e.next = null;
    if (!e.live) return;
    const gen = e.gen;
    const started = this.clock.now();
    e.inflight = true;
    let p: Promise<ProbeResult>;
    try {
      p = this.probe({ ...e.target }, e.spec.timeoutMs);
    } catch (err) {
      p = Promise.reject(err);
    }
    Promise.resolve(p).then(
      (r) => this.settle(e, gen, started, r),
      (err: unknown) => this.settle(e, gen, started, { ok: false, error: errorText(err), ms: this.clock.now() - started }),
    );
  }

  private settle(e: Entry, gen: number, started: number, r: ProbeResult): void {
    e.inflight = false;
    if (!e.live) return;
    if (gen !== e.gen) {
      this.run(e);
      return;
    }
    const ok = r?.ok === true;
    e.checks++;
    e.lastMs = typeof r?.ms === 'number' ? r.ms : this.clock.now() - started;
    if (ok) {
      e.lastError = null;
      e.consecutiveOk++;
      e.consecutiveFail = 0;
      if (e.consecutiveOk >= e.spec.rise) this.verdict(e, true);
    } else {
      e.failures++;
      e.lastError = typeof r?.error === 'string' ? r.error : 'failed';
      e.consecutiveFail++;
      e.consecutiveOk = 0;
      if (e.consecutiveFail >= e.spec.fall) this.verdict(e, false);
    }
    const wait = started + e.spec.intervalMs - this.clock.now();
    if (wait > 0) e.next = this.clock.setTimeout(() => this.run(e), wait);
    else this.run(e);
    this.report(e);
  }

  private verdict(e: Entry, up: boolean): void {
    if (e.raw !== up) {
      e.raw = up;
      if (e.judged) this.penalise(e);
    }
    e.judged = true;
  }

  private penaltyAt(e: Entry, now: number): number {
    return e.penalty * 2 ** (-(now - e.penaltyAt) / this.damping.halfLifeMs);
  }

  private penalise(e: Entry): void {
    if (this.damping.penalty === 0) return;
    const now = this.clock.now();
    e.penalty = Math.min(this.ceiling, this.penaltyAt(e, now) + this.damping.penalty);
    e.penaltyAt = now;
    if (e.penalty > this.damping.suppressAt) e.suppressed = true;
    if (e.suppressed) this.scheduleReuse(e, now);
  }

  private scheduleReuse(e: Entry, now: number): void {
    if (e.reuse !== null) this.clock.clearTimeout(e.reuse);
    const at = e.penaltyAt + this.damping.halfLifeMs * Math.log2(e.penalty / this.damping.reuseAt);
    e.reuse = this.clock.setTimeout(() => this.reuseCheck(e), Math.max(1, Math.ceil(at - now)));
  }

  private reuseCheck(e: Entry): void {
    e.reuse = null;
    if (!e.live) return;
    const now = this.clock.now();
    // Rounding can leave the penalty a hair above reuseAt at the computed time.
    if (this.penaltyAt(e, now) > this.damping.reuseAt * (1 + 1e-9)) {
      this.scheduleReuse(e, now);
      return;
    }
    e.suppressed = false;
    this.report(e);
  }

  private report(e: Entry): void {
    const up = e.raw && !e.suppressed;
    if (up === e.reported) return;
    e.reported = up;
    try {
      this.onChange(e.key, up);
    } catch {
      // The caller's problem; the state machine carries on.
    }
  }
}
