// The agent's side of the push stream: connects, resumes from its last
// applied version and that change's fingerprint (or takes a snapshot), hands each snapshot and delta to
// the handler, acknowledges what was applied, answers heartbeats, and
// reconnects with capped, jittered backoff (backoff.ts; a long one when its
// token is refused, which every replica would do too). One instance per host.
import { isIP, type Socket, connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { LoggedChange, PortMapping } from '../model/changes.js';
import { type ErrorCode, invalid, WeftError } from '../model/errors.js';
import { type Backoff, DEFAULT_BACKOFF, reconnectDelay } from './backoff.js';
import {
  type AgentGuards,
  type AgentMessage,
  type AgentRouting,
  type AgentVms,
  DEAD_MS,
  type DesiredState,
  encode,
  MessageReader,
  type ServerMessage,
  STREAM_VERSION,
} from './protocol.js';
import { decodeServerMessage } from './validate.js';

/** Codes with which a server refuses the agent's credentials (unknown or revoked token, wrong host): retrying soon cannot help. */
const REFUSED_CODES: ReadonlySet<string> = new Set(['E_UNAUTHENTICATED', 'E_FORBIDDEN']);
/** The wait after a refusal, doubling per refusal in a row up to the max; a welcome resets it. */
export const REFUSED_RETRY_MS = 5_000;
export const REFUSED_RETRY_MAX_MS = 60_000;

/**
 * What the client hands each snapshot and delta to, in the order they
 * arrive, as they arrive: the next message does not wait for the kernel.
 * Each call applies its message to the handler's state synchronously, before
 * it returns, and returns what settles once that version is applied (the
 * kernel holds it); the client acknowledges a version when its promise
 * resolves, in order. A rejected promise (or a throw) closes the connection:
 * the client reconnects from the last version acknowledged, so the handler
 * may then be given again deltas it already holds (applying a delta twice,
 * in order, must leave the state as once).
 */
export interface StreamHandler {
  /** Replace everything with this state (a snapshot at `version`). */
  snapshot(version: number, state: DesiredState): void | Promise<void>;
  /** Apply these changes; `vnis` are the host's VNIs after them. */
  delta(version: number, changes: LoggedChange[], vnis: number[]): void | Promise<void>;
  /**
   * Optional: takes a snapshot's ports chunk by chunk as they arrive, so the
   * client holds none of them (100k ports parsed are some 30 MB). `snapshot`
   * then gets the rest of the state with `ports` empty. A `snapshotBegin`
   * comes before the first chunk of every snapshot: what an unfinished one
   * passed (its connection broke) is to be dropped then.
   */
  snapshotBegin?(version: number): void;
  snapshotPorts?(ports: PortMapping[]): void;
}

export interface StreamClientOptions {
  /**
   * The server, or several replicas of it: the client connects to one at a
   * time and, when a connection fails or drops, tries the next one at once
   * (backing off only after trying them all).
   */
  host: string | string[];
  port: number;
  /** Connect with TLS, trusting this CA (PEM); the server's certificate must name the address connected to. */
  tlsCa?: Buffer | undefined;
  /** Mutual TLS: this host's certificate (PEM, its CN or a DNS SAN the host's name) and its key, presented with `tlsCa`. */
  tlsCert?: Buffer | undefined;
  tlsKey?: Buffer | undefined;
  hostRef: string;
  /** The token, or what reads it at each connection attempt (a rotated token file is picked up without a restart). */
  token: string | (() => string);
  handler: StreamHandler;
  /** Where the agent starts (from its own state after a restart). */
  version?: number;
  /** The fingerprint the server sent with `version` (StreamClient.fingerprint), so a server whose log differs there sends a snapshot. */
  fingerprint?: string | null;
  vnis?: number[];
  /** What the hello asks for beyond the network (STREAM_FEATURES: "vm", the host's instances). */
  features?: string[];
  /** A console session's opening, input or end from the server (only to an agent that asked for "vm"). */
  onConsole?: (m: Extract<ServerMessage, { t: 'console.open' | 'console.data' | 'console.close' }>) => void;
  onError?: (e: Error) => void;
  /**
   * The server accepted the hello; `hostId` is the host the token belongs to,
   * `reason` why a snapshot comes (`ahead`, `diverged`: the server's log is not
   * the one this agent followed, as after a restore; absent from older servers).
   */
  onWelcome?: (hostId: string, mode: 'deltas' | 'snapshot', reason?: string) => void;
  /** The connection closed (the client reconnects by itself). */
  onClose?: () => void;
  /**
   * The server refused the token (E_UNAUTHENTICATED: unknown, or revoked
   * mid-session; E_FORBIDDEN: not this host's) and closed: the client tries
   * again, at any replica, only after `retryMs`. Without it, `onError` hears it.
   */
  onRefused?: (e: WeftError, retryMs: number) => void;
  /** The reconnect schedule's bounds (DEFAULT_BACKOFF when absent). */
  backoff?: Backoff;
  /** [0, 1), for the backoff's jitter (Math.random when absent; tests pass a seeded one). */
  random?: () => number;
  /** Called with each reconnect delay as it is chosen (after every replica failed), for logs and tests. */
  onRetry?: (delayMs: number, attempt: number) => void;
}

/** One connection and what was handed over on it. */
interface Conn {
  sock: Socket;
  /** Versions handed to the handler and not yet acknowledged, oldest first; `done` once their promise resolved. */
  unacked: { version: number; vnis: number[]; fingerprint: string | null; done: boolean }[];
  /** An ack is about to be sent (coalescing the versions applied meanwhile). */
  flushing: boolean;
  /** A handler failed: nothing more of this connection is handed over (what was applied before is still acked). */
  broken: boolean;
  /** The connection closed: nothing more is acked on it. */
  closed: boolean;
  /** The server refused the credentials on it (then closes). */
  refused: WeftError | null;
}

export class StreamClient {
  /** The last version applied and acknowledged. */
  version: number;
  /** The fingerprint of the change at `version` as the server sent it (null: none sent, by an older server, or at 0). */
  fingerprint: string | null;
  private vnis: number[];
  private sock: Socket | null = null;
  private stopped = false;
  /** Rounds of every replica failing since the last welcome: the backoff's exponent. */
  private attempt = 0;
  /** The wait after the next refusal of the token. */
  private refusedBackoff = REFUSED_RETRY_MS;
  private timer: NodeJS.Timeout | null = null;
  private readonly hosts: string[];
  /** Index into `hosts` of the replica tried next. */
  private turn = 0;
  private snap: { version: number; ports: PortMapping[] } | null = null;
  private lastRx = Date.now();
  /** When the server was last heard from (any message). */
  get lastHeard(): number {
    return this.lastRx;
  }
  private readonly watchdog: NodeJS.Timeout;
  connected = false;
  /** The replica connected to, or being tried. */
  server = '';

  constructor(private readonly o: StreamClientOptions) {
    this.version = o.version ?? 0;
    this.fingerprint = o.fingerprint ?? null;
    this.vnis = o.vnis ?? [];
    this.hosts = typeof o.host === 'string' ? [o.host] : [...o.host];
    if (this.hosts.length === 0) throw invalid('host', o.host, 'must name at least one server address');
    this.watchdog = setInterval(() => {
      if (this.sock && Date.now() - this.lastRx > DEAD_MS) this.sock.destroy();
    }, 1000);
    this.watchdog.unref();
  }

  start(): void {
    this.open();
  }

  /** Sends the agent's routing status to the server; false when it was dropped (disconnected, or the socket backed up). */
  report(routing: AgentRouting): boolean {
    return this.send({ t: 'routing', routing });
  }

  /** Sends the agent's guards report (its unguarded ports) to the server; false when it was dropped, as `report`. */
  reportGuards(guards: AgentGuards): boolean {
    return this.send({ t: 'guards', guards });
  }

  /** Sends the agent's VM report to the server; false when it was dropped, as `report`. */
  reportVms(vms: AgentVms): boolean {
    return this.send({ t: 'vms', vms });
  }

  /** Console output or the end of a console session, to the server; false when it was dropped, as `report`. */
  sendConsole(m: Extract<AgentMessage, { t: 'console.data' | 'console.close' }>): boolean {
    return this.send(m);
  }

  private send(m: AgentMessage): boolean {
    if (!this.connected || !this.sock || this.sock.writableLength >= 1 << 20) return false;
    this.sock.write(encode(m));
    return true;
  }

  private open(): void {
    if (this.stopped) return;
    const o = this.o;
    const host = this.hosts[this.turn % this.hosts.length] as string;
    this.server = host;
    const sock = o.tlsCa
      ? tlsConnect({
          host,
          port: o.port,
          ca: o.tlsCa,
          // SNI carries names only (RFC 6066); an address is checked against the certificate's IP SANs all the same.
          ...(isIP(host) ? {} : { servername: host }),
          ...(o.tlsCert && o.tlsKey ? { cert: o.tlsCert, key: o.tlsKey } : {}),
        })
      : tcpConnect(o.port, host);
    this.sock = sock;
    const conn: Conn = { sock, unacked: [], flushing: false, broken: false, closed: false, refused: null };
    const reader = new MessageReader();
    sock.setNoDelay(true);
    sock.on(o.tlsCa ? 'secureConnect' : 'connect', () => {
      this.lastRx = Date.now();
      const fingerprint = this.version > 0 && this.fingerprint ? { fingerprint: this.fingerprint } : {};
      const token = typeof o.token === 'function' ? o.token() : o.token;
      const features = o.features && o.features.length > 0 ? { features: o.features } : {};
      sock.write(encode({ t: 'hello', v: STREAM_VERSION, host: o.hostRef, token, version: this.version, vnis: this.vnis, ...fingerprint, ...features }));
    });
    sock.on('data', (chunk: Buffer) => {
      this.lastRx = Date.now();
      let msgs: unknown[];
      try {
        msgs = reader.push(chunk);
      } catch (e) {
        o.onError?.(e as Error);
        sock.destroy();
        return;
      }
      for (const raw of msgs) {
        // After a failed handler, the rest of the connection is not applied.
        if (conn.broken || sock.destroyed) return;
        let m: ServerMessage | null;
        try {
          m = decodeServerMessage(raw);
        } catch (e) {
          // A malformed message: nothing after it on this connection is trusted either.
          conn.broken = true;
          setImmediate(() => this.fail(conn, e as Error));
          return;
        }
        if (m === null) continue;
        try {
          this.handle(conn, m);
        } catch (e) {
          // Ended once the acks of what was applied before it are out.
          conn.broken = true;
          setImmediate(() => this.fail(conn, e as Error));
        }
      }
    });
    sock.on('error', (e) => o.onError?.(e));
    sock.on('close', () => {
      this.connected = false;
      this.snap = null;
      // What was handed over on this connection and not acknowledged comes again on the next one.
      conn.broken = conn.closed = true;
      conn.unacked = [];
      this.o.onClose?.();
      if (this.stopped) return;
      this.turn = (this.turn + 1) % this.hosts.length;
      if (conn.refused) {
        // Every replica reads the same tokens: none would take it now. Retried seldom, in case it comes back (a restored store).
        const wait = this.refusedBackoff;
        this.refusedBackoff = Math.min(this.refusedBackoff * 2, REFUSED_RETRY_MAX_MS);
        if (this.o.onRefused) this.o.onRefused(conn.refused, wait);
        else this.o.onError?.(conn.refused);
        this.timer = setTimeout(() => this.open(), wait);
        return;
      }
      // The next replica at once; the backoff grows only once every one was tried.
      let delay = 0;
      if (this.turn === 0) {
        delay = reconnectDelay(this.attempt, this.o.random, this.o.backoff ?? DEFAULT_BACKOFF);
        this.o.onRetry?.(delay, this.attempt);
        this.attempt++;
      }
      this.timer = setTimeout(() => this.open(), delay);
    });
  }

  /** One message, handed over synchronously; the kernel's part is awaited in `track`. */
  private handle(conn: Conn, m: ServerMessage): void {
    switch (m.t) {
      case 'welcome':
        this.connected = true;
        this.attempt = 0;
        this.refusedBackoff = REFUSED_RETRY_MS;
        this.o.onWelcome?.(m.hostId, m.mode, m.reason);
        break;
      case 'snapshot.begin':
        this.snap = { version: m.version, ports: [] };
        this.o.handler.snapshotBegin?.(m.version);
        break;
      case 'snapshot.ports':
        if (!this.snap) break;
        if (this.o.handler.snapshotPorts) this.o.handler.snapshotPorts(m.ports);
        else for (const p of m.ports) this.snap.ports.push(p);
        break;
      case 'snapshot.end': {
        const ports = this.snap?.ports ?? [];
        this.snap = null;
        this.track(conn, m.version, m.state.vnis, m.fingerprint, this.o.handler.snapshot(m.version, { ...m.state, ports }));
        break;
      }
      case 'delta':
        this.track(conn, m.version, m.vnis, m.fingerprint, this.o.handler.delta(m.version, m.changes, m.vnis));
        break;
      case 'ping':
        conn.sock.write(encode({ t: 'pong' }));
        break;
      case 'error': {
        const e = new WeftError(m.code as ErrorCode, `${m.code}: ${m.message}`);
        // Told when the connection closes, with the wait before the next try.
        if (REFUSED_CODES.has(m.code)) conn.refused = e;
        else this.o.onError?.(e);
        break;
      }
      case 'console.open':
      case 'console.data':
      case 'console.close':
        this.o.onConsole?.(m);
        break;
      default:
        break;
    }
  }

  /** Acknowledges `version` once `applied` resolves and every version before it has been. */
  private track(conn: Conn, version: number, vnis: number[], fingerprint: string | undefined, applied: void | Promise<void>): void {
    const entry = { version, vnis, fingerprint: fingerprint ?? null, done: false };
    conn.unacked.push(entry);
    Promise.resolve(applied).then(
      () => {
        // Of a connection that has since closed: not acknowledged (the next one starts from the last ack).
        if (conn.closed) return;
        entry.done = true;
        // One ack for all that one reconcile applied: their promises resolve together.
        if (conn.flushing) return;
        conn.flushing = true;
        setImmediate(() => {
          conn.flushing = false;
          this.flush(conn);
        });
      },
      (e: Error) => {
        if (conn.broken) return;
        conn.broken = true;
        this.fail(conn, e);
      },
    );
  }

  /** Acks the newest version of the run of applied ones at the head (an ack covers every version before it). */
  private flush(conn: Conn): void {
    const list = conn.unacked;
    let n = 0;
    while (n < list.length && (list[n] as { done: boolean }).done) n++;
    if (n === 0 || conn.sock.destroyed) return;
    const last = list[n - 1] as { version: number; vnis: number[]; fingerprint: string | null };
    list.splice(0, n);
    this.version = last.version;
    this.vnis = last.vnis;
    this.fingerprint = last.fingerprint;
    conn.sock.write(encode({ t: 'ack', version: last.version }));
  }

  /** A handler failed: this connection ends, and the next resumes from the last acknowledged version. */
  private fail(conn: Conn, e: Error): void {
    if (conn.sock.destroyed) return;
    // What was applied before the failure is acknowledged first.
    this.flush(conn);
    this.o.onError?.(e);
    conn.sock.destroy();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.watchdog);
    if (this.timer) clearTimeout(this.timer);
    this.sock?.destroy();
  }
}
