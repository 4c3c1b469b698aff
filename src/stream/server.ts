// The push stream's server side: one session per connected agent, resumed
// from its last version with filtered deltas when it can, or sent a
// snapshot when it cannot (new VNI on the host, too far behind, too slow to
// keep up, or its log is not the server's: ahead of it or different, as after
// a restore). Agents acknowledge what they applied; each host's lag is known.
// A session ends when the log says its token or its host was deleted.
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import prom from 'prom-client';
import type { MappingIndex } from '../mapping/index.js';
import type { LoggedChange } from '../model/changes.js';
import { WeftError } from '../model/errors.js';
import type { Token } from '../model/types.js';
import type { HostRow } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { ConnectionCaps, type ConnectionLimits } from '../sys/conn-caps.js';
import { listenOn } from '../sys/listen.js';
import { type CertIdentity, certHostNames, certNamesHost } from './cert-names.js';
import { ConsoleRelay, type ConsoleSink } from './console.js';
import { desiredState } from './desired.js';
import {
  type AgentGuards,
  type AgentMessage,
  type AgentRouting,
  type AgentVms,
  CONSOLE_CHUNK,
  changeFingerprint,
  DEAD_MS,
  encode,
  HEARTBEAT_MS,
  MessageReader,
  type ServerMessage,
  SNAPSHOT_CHUNK,
  SNAPSHOT_REASONS,
  type SnapshotReason,
  STREAM_VERSION,
  sanitizeGuards,
  sanitizeRouting,
  sanitizeVms,
} from './protocol.js';
import { concerns } from './relevance.js';
import { mergeRevocations, REVOKED_MESSAGE, type Revocations, type RevokeReason, revocationsIn, revokedBy } from './revocation.js';
import { decodeAgentMessage } from './validate.js';

/** Resume with deltas only when the agent is at most this many changes behind. */
const MAX_RESUME = 50_000;
/** Unread output above which an agent is dropped to "snapshot when it drains". */
const SLOW_BYTES = 4 * 1024 * 1024;

interface Session {
  sock: Socket;
  /** host:port of the agent, for the log. */
  peer: string;
  hostId: string;
  /** The token the hello authenticated with: its deletion ends the session. */
  tokenId: string;
  /** Ended by a revocation: nothing more is sent or read. */
  revoked: boolean;
  rackId: string | null;
  /** The host's VNIs as the agent was last told them. */
  vnis: Set<number>;
  /** Networks of the host's own ports (routed ones have no VNI but still concern it). */
  nets: Set<string>;
  vips: Set<string>;
  /** The agent manages its VMs (hello features "vm"): it gets the host's instances. */
  vm: boolean;
  mode: 'catchup' | 'live' | 'stalled';
  /** Bumped by every snapshot: an older catch-up that sees a newer generation stops. */
  gen: number;
  /** Batches that arrived while catching up or snapshotting. */
  pending: LoggedChange[];
  /** Highest version sent (or skipped as not relevant). */
  sent: number;
  /** Highest version sent that carried something the agent must apply. */
  owed: number;
  acked: number;
  /** What the host has applied, as far as the server can tell. */
  applied: number;
  /** Unread bytes right after the last snapshot: the slow-agent limit counts beyond them. */
  baseline: number;
  lastRx: number;
  connectedAt: string;
  /** The agent's last routing report. */
  routing: AgentRouting | null;
  /** The agent's last guards report. */
  guards: AgentGuards | null;
  /** The agent's last VM report (only from an agent that manages VMs). */
  vms: AgentVms | null;
}

export interface AgentStatus {
  hostId: string;
  connectedAt: string;
  appliedVersion: number;
  sentVersion: number;
  lag: number;
  /** BGP sessions and announced VIPs as the agent last reported them (null: no report, e.g. routing off). */
  routing: AgentRouting | null;
  /** Its local ports kept unplugged for want of a guard, as it last reported them (null: no report yet, or an older agent). */
  guards: AgentGuards | null;
  /** Its VMs as it last reported them (null: it does not manage VMs, or no report yet). */
  vms: AgentVms | null;
}

/**
 * What the stream server needs from the rest of the server, wired by the
 * composition root (server/server.ts): the store it reads the change log
 * and desired states from, and how a hello's token and host are checked.
 */
export interface StreamContext {
  store: Store;
  /** The token whose secret this is, or null when there is none (unknown or revoked); throws only when the store fails. */
  authenticate(secret: string): Promise<Token | null>;
  /** The host a hello names, by id or by name; throws a WeftError E_NOT_FOUND when there is none. */
  host(ref: string): Promise<HostRow>;
}

/** Stream connections in total and per source: one agent per hypervisor, a few while one reconnects. */
export const DEFAULT_STREAM_LIMITS: ConnectionLimits = { max: 4096, perSource: 8 };
/** A connection that has not sent its hello within this is closed. */
export const DEFAULT_STREAM_HELLO_MS = 10_000;
/** A connection that left a frame unfinished for this long (a peer feeding it a byte at a time) is closed. */
export const DEFAULT_STREAM_STALL_MS = 30_000;

export interface StreamTls {
  cert: Buffer;
  key: Buffer;
  /**
   * Mutual TLS: every agent must present a certificate signed by this CA
   * (PEM), naming the host its hello names (subject CN or a DNS SAN). A
   * connection without one is refused before its hello is read; a hello for
   * another host is refused E_FORBIDDEN. The token check still applies.
   */
  ca?: Buffer | undefined;
}

/** Where the server reports a connection it closed for bad input: one JSON line on stderr unless told otherwise. */
export type StreamErrorLog = (e: Error, peer: string) => void;

const stderrLog: StreamErrorLog = (e, peer) =>
  process.stderr.write(`${JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg: 'push stream: connection closed', peer, error: e.message })}\n`);

/** Connections refused at a cap: the TLS server's secureConnection must not serve them. */
const refusedSockets = new WeakSet<Socket>();

/** Why a connection's client certificate is refused, and what to do, in one line. */
function certRefusal(sock: TLSSocket): string {
  const fix = "give this agent a certificate signed by the stream's CA (weft agent --stream-tls-cert, --stream-tls-key)";
  const presented = Object.keys(sock.getPeerCertificate() ?? {}).length > 0;
  if (!presented) return `no client certificate: this push stream requires one; ${fix}`;
  const why = String(sock.authorizationError ?? 'unverified');
  if (why === 'CERT_HAS_EXPIRED') return `client certificate refused: it has expired; ${fix}`;
  if (why === 'CERT_NOT_YET_VALID') return `client certificate refused: it is not valid yet (check the clocks); ${fix}`;
  return `client certificate refused: not signed by the stream's CA (${why}); ${fix}`;
}

export class StreamServer {
  private readonly server: Server;
  private readonly sessions = new Map<string, Session>();
  private readonly heartbeat: NodeJS.Timeout;
  private head = 0;
  /** Hellos in flight, each with the index version from before it authenticated. */
  private readonly hellos = new Set<{ since: number }>();
  /** Serial console sessions relayed to the agents (stream/console.ts). */
  readonly consoles = new ConsoleRelay();
  /** Deletions delivered while hellos were in flight: a hello that authenticated before one of them is refused. */
  private late: Revocations | null = null;
  private revokedSessions: prom.Counter<'reason'> | null = null;
  private snapshots: prom.Counter<'reason'> | null = null;
  /** Silence after which a connection is dead (DEAD_MS; shorter in tests). */
  private readonly deadMs: number;
  private readonly onError: StreamErrorLog;
  private readonly helloMs: number;
  private readonly stallMs: number;
  /** Client certificates are required (StreamTls.ca). */
  private readonly mutual: boolean;

  constructor(
    private readonly ctx: StreamContext,
    private readonly index: MappingIndex,
    o: {
      registry?: prom.Registry;
      tls?: StreamTls | undefined;
      heartbeatMs?: number;
      deadMs?: number;
      onError?: StreamErrorLog;
      /** Connection caps (DEFAULT_STREAM_LIMITS). */
      limits?: ConnectionLimits | undefined;
      /** Time from connect to hello (DEFAULT_STREAM_HELLO_MS, or deadMs when shorter). */
      helloMs?: number | undefined;
      /** The longest a frame may stay unfinished (DEFAULT_STREAM_STALL_MS). */
      stallMs?: number | undefined;
    } = {},
  ) {
    this.deadMs = o.deadMs ?? DEAD_MS;
    this.helloMs = o.helloMs ?? Math.min(this.deadMs, DEFAULT_STREAM_HELLO_MS);
    this.stallMs = o.stallMs ?? DEFAULT_STREAM_STALL_MS;
    this.onError = o.onError ?? stderrLog;
    const caps = new ConnectionCaps('stream', o.limits ?? DEFAULT_STREAM_LIMITS, o.registry);
    const onConn = (s: Socket) => {
      if (!refusedSockets.has(s)) this.accept(s);
    };
    this.mutual = o.tls?.ca !== undefined;
    // With a CA, certificates are requested and checked here, but a bad one fails in accept(), not in the
    // handshake: the agent is told why (and logs it) instead of seeing a bare TLS alert.
    this.server = o.tls
      ? createTlsServer({ cert: o.tls.cert, key: o.tls.key, ...(o.tls.ca ? { ca: o.tls.ca, requestCert: true, rejectUnauthorized: false } : {}) }, onConn).on(
          'tlsClientError',
          () => {
            // A failed handshake (plain TCP, a bad hello): that one connection is gone, nothing to do.
          },
        )
      : createTcpServer(onConn);
    // Admission on the raw TCP connection, before a TLS handshake costs anything.
    const tls = o.tls !== undefined;
    this.server.prependListener('connection', (raw: Socket) => {
      const reason = caps.admit(raw);
      if (!reason) return;
      refusedSockets.add(raw);
      raw.on('error', () => raw.destroy());
      // In clear, the agent is told why (it backs off as on any error); over TLS there is no session to say it in.
      if (tls) raw.destroy();
      else {
        raw.end(
          encode({
            t: 'error',
            code: 'E_BUSY',
            message: `the push stream is at its cap (${reason === 'total' ? `${caps.limits.max} connections` : `${caps.limits.perSource} connections from ${raw.remoteAddress}`})`,
          }),
        );
        setTimeout(() => raw.destroy(), 1000).unref();
      }
    });
    this.heartbeat = setInterval(() => this.beat(), o.heartbeatMs ?? HEARTBEAT_MS);
    this.heartbeat.unref();
    if (o.registry) this.metrics(o.registry);
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenOn(this.server, host, port);
  }

  /** Every connected agent's applied version and lag behind the newest change. */
  status(): AgentStatus[] {
    const head = Math.max(this.head, this.index.version);
    return [...this.sessions.values()]
      .map((s) => ({
        hostId: s.hostId,
        connectedAt: s.connectedAt,
        appliedVersion: s.applied,
        sentVersion: s.sent,
        lag: Math.max(0, head - s.applied),
        routing: s.routing,
        guards: s.guards,
        vms: s.vms,
      }))
      .sort((a, b) => a.hostId.localeCompare(b.hostId));
  }

  /** Called by the follower after each batch it applied to the index, in order. */
  deliver(changes: readonly LoggedChange[]): void {
    const last = changes.at(-1);
    if (!last) return;
    this.head = Math.max(this.head, last.version);
    const revoked = revocationsIn(changes);
    if (revoked) this.revoke(revoked);
    for (const { session, reason } of this.consoles.ended(changes)) this.closeConsole(session.id, reason);
    for (const s of this.sessions.values()) {
      if (s.mode === 'live') this.sendChanges(s, changes);
      else if (s.mode === 'catchup') s.pending.push(...changes);
    }
  }

  /**
   * A serial console session for an instance on `hostId`, relayed to that
   * host's agent (connected to this server, managing VMs). Returns how to
   * write to it and end it; the sink hears its output and its end.
   */
  openConsole(o: { instanceId: string; hostId: string; tokenId: string; force: boolean; sink: ConsoleSink }): {
    write(bytes: Buffer): void;
    close(reason: string): void;
  } {
    const agent = this.sessions.get(o.hostId);
    if (!agent || agent.revoked || agent.sock.destroyed)
      throw new WeftError(
        'E_UNAVAILABLE',
        `the agent of host ${o.hostId} is not connected to this server (with several replicas, ask the one it follows: GET /v1/agents)`,
      );
    if (!agent.vm) throw new WeftError('E_UNAVAILABLE', `the agent of host ${o.hostId} does not manage VMs (weft agent --vm-dir): it has no consoles`);
    const { session, replaced } = this.consoles.open(o);
    if (replaced) this.send(agent, { t: 'console.close', session: replaced.id, reason: 'taken over' });
    this.send(agent, { t: 'console.open', session: session.id, instanceId: o.instanceId });
    return {
      write: (bytes) => {
        const a = this.sessions.get(o.hostId);
        if (!a || !this.consoles.get(session.id)) return;
        // An agent that does not read gets no more console input: the session ends rather than the server buffering it.
        if (a.sock.writableLength > SLOW_BYTES) {
          this.closeConsole(session.id, 'the agent is not reading');
          return;
        }
        for (let i = 0; i < bytes.length; i += CONSOLE_CHUNK)
          this.send(a, { t: 'console.data', session: session.id, data: bytes.subarray(i, i + CONSOLE_CHUNK).toString('base64') });
      },
      close: (reason) => this.closeConsole(session.id, reason),
    };
  }

  /** Ends a console session on both sides: its sink, and its agent (if it is still connected). */
  private closeConsole(id: string, reason: string): void {
    const c = this.consoles.end(id, reason);
    const a = c && this.sessions.get(c.hostId);
    if (a) this.send(a, { t: 'console.close', session: id, reason });
  }

  /** Console output or an end from an agent: only for a session of its own host. */
  private fromAgentConsole(s: Session, m: Extract<AgentMessage, { t: 'console.data' | 'console.close' }>): void {
    const c = this.consoles.get(m.session);
    if (!c || c.hostId !== s.hostId) return;
    if (m.t === 'console.data') c.sink.data(Buffer.from(m.data, 'base64'));
    else this.consoles.end(c.id, m.reason);
  }

  private send(s: Session, m: ServerMessage): void {
    if (!s.sock.destroyed && !s.sock.writableEnded) s.sock.write(encode(m));
  }

  /** Ends every session whose token or host `r` deleted: an `error` E_UNAUTHENTICATED naming why, then the close. */
  private revoke(r: Revocations): void {
    // A hello between its token check and its session sees these too (hello()).
    if (this.hellos.size > 0) {
      this.late ??= { tokens: new Map(), hosts: new Map() };
      mergeRevocations(this.late, r);
    }
    for (const s of [...this.sessions.values()]) {
      const reason = revokedBy(r, s.tokenId, s.hostId);
      if (reason) this.endRevoked(s, reason);
    }
  }

  private endRevoked(s: Session, reason: RevokeReason): void {
    s.revoked = true;
    if (this.sessions.get(s.hostId) === s) this.sessions.delete(s.hostId);
    this.revokedSessions?.inc({ reason });
    const message = REVOKED_MESSAGE[reason];
    this.onError(new WeftError('E_UNAUTHENTICATED', `session of host ${s.hostId} ended: ${message}`), s.peer);
    if (!s.sock.destroyed && !s.sock.writableEnded) s.sock.end(encode({ t: 'error', code: 'E_UNAUTHENTICATED', message }));
    // An agent that does not close after the error is closed for it.
    setTimeout(() => s.sock.destroy(), 1000).unref();
  }

  private accept(sock: Socket): void {
    sock.setNoDelay(true);
    const reader = new MessageReader(64 * 1024);
    const peer = `${sock.remoteAddress}:${sock.remotePort}`;
    let session: Session | null = null;
    let helloSeen = false;
    /** An error was sent: nothing more from this peer is read. */
    let refused = false;
    const hello = setTimeout(() => {
      this.onError(new WeftError('E_TIMEOUT', `no hello within ${this.helloMs} ms`), peer);
      sock.destroy();
    }, this.helloMs);
    /** Armed while a frame is unfinished: a peer cannot hold one open by trickling bytes. */
    let stall: NodeJS.Timeout | null = null;
    const refuse = (code: string, message: string) => {
      refused = true;
      sock.end(encode({ t: 'error', code, message }));
      // A peer that does not close after the error is closed for it.
      setTimeout(() => sock.destroy(), 1000).unref();
    };
    /** The host names the client certificate vouches for (mutual TLS), checked against the hello's host. */
    let cert: CertIdentity | null = null;
    if (this.mutual) {
      const tls = sock as TLSSocket;
      if (tls.authorized) cert = tls.getPeerCertificate();
      else {
        const e = new WeftError('E_UNAUTHENTICATED', certRefusal(tls));
        this.onError(e, peer);
        clearTimeout(hello);
        // Nothing it sends is read (refused): its hello, token and all, is never looked at.
        refuse(e.code, e.message);
      }
    }
    sock.on('data', (chunk: Buffer) => {
      if (refused) return;
      let msgs: unknown[];
      try {
        msgs = reader.push(chunk);
      } catch (e) {
        this.onError(e as Error, peer);
        sock.destroy();
        return;
      }
      if (stall && (msgs.length > 0 || reader.pending === 0)) {
        clearTimeout(stall);
        stall = null;
      }
      if (!stall && reader.pending > 0)
        stall = setTimeout(() => {
          this.onError(new WeftError('E_TIMEOUT', `a frame unfinished for ${this.stallMs} ms (${reader.pending} bytes of it in)`), peer);
          sock.destroy();
        }, this.stallMs);
      for (const raw of msgs) {
        // Null: a type from a newer agent, ignored.
        let m: AgentMessage | null;
        try {
          m = decodeAgentMessage(raw, STREAM_VERSION);
        } catch (e) {
          // A malformed message: named to the agent and logged; nothing after it is read.
          this.onError(e as Error, peer);
          return refuse((e as WeftError).code ?? 'E_INVALID_ARG', (e as Error).message);
        }
        if (m?.t === 'hello') {
          if (helloSeen) return refuse('E_INVALID_ARG', 'one hello per connection');
          helloSeen = true;
          clearTimeout(hello);
          this.hello(sock, peer, m, cert).then(
            (s) => {
              session = s;
            },
            (e: Error & { code?: string }) => refuse(e.code ?? 'E_INTERNAL', e.message),
          );
          continue;
        }
        if (!helloSeen) return refuse('E_INVALID_ARG', 'expected hello first');
        if (!session) continue;
        if (session.revoked) return;
        session.lastRx = Date.now();
        if (m?.t === 'ack') this.ack(session, m.version);
        else if (m?.t === 'routing') session.routing = sanitizeRouting(m.routing);
        else if (m?.t === 'guards') session.guards = sanitizeGuards(m.guards);
        else if (m?.t === 'vms') session.vms = sanitizeVms(m.vms);
        else if (m?.t === 'console.data' || m?.t === 'console.close') this.fromAgentConsole(session, m);
        // A peer that does not read gets no more pongs: its output stays bounded.
        else if (m?.t === 'ping' && sock.writableLength < SLOW_BYTES) this.send(session, { t: 'pong' });
        // Anything else (pong, or a type from a newer agent) is ignored.
      }
    });
    sock.on('drain', () => {
      if (session) session.baseline = 0;
      if (session?.mode === 'stalled') this.snapshot(session, 'slow').catch(() => sock.destroy());
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      clearTimeout(hello);
      if (stall) clearTimeout(stall);
      // Whichever session this socket carries (hello may have finished or not).
      for (const [id, s] of this.sessions)
        if (s.sock === sock) {
          this.sessions.delete(id);
          for (const c of this.consoles.ofHost(id)) this.consoles.end(c.id, "the host's agent disconnected");
        }
    });
  }

  private async hello(sock: Socket, peer: string, m: Extract<AgentMessage, { t: 'hello' }>, cert: CertIdentity | null): Promise<Session> {
    if (m.v !== STREAM_VERSION) throw new WeftError('E_INVALID_ARG', `stream version ${m.v} is not spoken; this server speaks ${STREAM_VERSION}`, 'hello.v');
    // The token is read from the store after this version: a deletion delivered later may have committed after the read.
    const mark = { since: this.index.version };
    this.hellos.add(mark);
    try {
      return await this.open(sock, peer, m, mark.since, cert);
    } finally {
      this.hellos.delete(mark);
      this.pruneLate();
    }
  }

  /** Forgets the deletions no hello in flight can have missed. */
  private pruneLate(): void {
    if (!this.late) return;
    if (this.hellos.size === 0) {
      this.late = null;
      return;
    }
    const oldest = Math.min(...[...this.hellos].map((h) => h.since));
    for (const ids of [this.late.tokens, this.late.hosts]) for (const [id, v] of ids) if (v <= oldest) ids.delete(id);
  }

  private async open(sock: Socket, peer: string, m: Extract<AgentMessage, { t: 'hello' }>, since: number, cert: CertIdentity | null): Promise<Session> {
    const token = typeof m.token === 'string' ? await this.ctx.authenticate(m.token) : null;
    if (!token) throw new WeftError('E_UNAUTHENTICATED', 'unknown or revoked token');
    const host = await this.ctx.host(String(m.host));
    // Mutual TLS: the certificate must be this host's, whatever the token (an admin token too).
    if (cert && !certNamesHost(cert, host.name)) {
      const names = certHostNames(cert);
      const e = new WeftError(
        'E_FORBIDDEN',
        `client certificate (${names.length ? names.join(', ') : 'no CN or DNS name'}) is not host ${host.name}'s: its subject CN or a DNS subjectAltName must be ${host.name}`,
      );
      this.onError(e, peer);
      throw e;
    }
    if (!(token.role === 'admin' || (token.role === 'agent' && token.hostId === host.id)))
      throw new WeftError('E_FORBIDDEN', `a ${token.role} token may not follow host ${host.name}`);
    const version = Number.isInteger(m.version) && m.version > 0 ? m.version : 0;
    const head = Math.max(this.index.version, await this.ctx.store.headVersion());
    // What the host has now, from the server's own records: the agent's claims only decide resume or snapshot.
    const held = await this.ctx.store.read((tx) => tx.hostHoldings(host.id));
    // An agent that applied changes this log does not have (a restored store) must not resume
    // from a version that names other changes here: its state is replaced by a snapshot.
    const diverged = version > 0 && version <= head && m.fingerprint !== undefined && (await this.fingerprintAt(version)) !== m.fingerprint;
    if (sock.destroyed) throw new WeftError('E_UNAVAILABLE', 'connection closed during hello');
    const now = this.index.vnisOf(host.id);
    const claimed = new Set(Array.isArray(m.vnis) ? m.vnis.filter(Number.isInteger) : []);
    const reason: SnapshotReason | null =
      version === 0
        ? 'initial'
        : version > head
          ? 'ahead'
          : diverged
            ? 'diverged'
            : head - version > MAX_RESUME
              ? 'behind'
              : now.every((v) => claimed.has(v))
                ? null
                : 'vnis';
    // Deleted while this hello read the store: refused as a live session would have been closed.
    const late = this.late && revokedBy(this.late, token.id, host.id, since);
    if (late) throw new WeftError('E_UNAUTHENTICATED', REVOKED_MESSAGE[late]);
    this.sessions.get(host.id)?.sock.destroy();
    const s: Session = {
      sock,
      peer,
      hostId: host.id,
      tokenId: token.id,
      revoked: false,
      rackId: host.rackId,
      vnis: new Set(now),
      nets: new Set(held.networkIds),
      vips: new Set(held.vipIds),
      vm: Array.isArray(m.features) && m.features.includes('vm'),
      mode: 'catchup',
      gen: 0,
      pending: [],
      sent: version,
      owed: version,
      acked: version,
      applied: version,
      baseline: 0,
      lastRx: Date.now(),
      connectedAt: new Date().toISOString(),
      routing: null,
      guards: null,
      vms: null,
    };
    this.sessions.set(host.id, s);
    this.send(s, { t: 'welcome', v: STREAM_VERSION, hostId: host.id, mode: reason ? 'snapshot' : 'deltas', head, ...(reason ? { reason } : {}) });
    // Not awaited: the session takes acks and pings while it catches up.
    (reason ? this.snapshot(s, reason) : this.catchUp(s, version, s.gen)).catch(() => sock.destroy());
    return s;
  }

  /**
   * Sends the log from `from` until the session meets the live stream, then
   * goes live. Stops if a newer snapshot took over (`gen`), or if the agent
   * stops reading (it gets a snapshot once it drains).
   */
  private async catchUp(s: Session, from: number, gen: number): Promise<void> {
    let at = from;
    for (;;) {
      if (s.gen !== gen || s.sock.destroyed) return;
      const batch = await this.ctx.store.changesSince(at, 1000);
      if (s.gen !== gen) return;
      if (batch.length === 0) break;
      this.sendChanges(s, batch, true);
      if (s.gen !== gen || s.mode === 'stalled') return;
      at = (batch.at(-1) as LoggedChange).version;
      if (batch.length < 1000) break;
    }
    s.mode = 'live';
    const pending = s.pending;
    s.pending = [];
    this.sendChanges(s, pending);
  }

  /** The fingerprint of this log's change at `version` (undefined at 0, or when there is none). */
  private async fingerprintAt(version: number): Promise<string | undefined> {
    if (version <= 0) return undefined;
    const [c] = await this.ctx.store.changesSince(version - 1, 1);
    return c?.version === version ? changeFingerprint(c) : undefined;
  }

  private async snapshot(s: Session, reason: SnapshotReason): Promise<void> {
    const gen = ++s.gen;
    s.mode = 'catchup';
    s.pending = [];
    const { version, state } = await desiredState(this.ctx.store, s.hostId, { instances: s.vm });
    const fingerprint = await this.fingerprintAt(version);
    if (s.gen !== gen || s.sock.destroyed) return;
    this.snapshots?.inc({ reason });
    const { ports, ...rest } = state;
    this.send(s, { t: 'snapshot.begin', version });
    for (let i = 0; i < ports.length; i += SNAPSHOT_CHUNK) this.send(s, { t: 'snapshot.ports', ports: ports.slice(i, i + SNAPSHOT_CHUNK) });
    this.send(s, { t: 'snapshot.end', version, state: rest, ...(fingerprint ? { fingerprint } : {}) });
    s.baseline = s.sock.writableLength;
    s.rackId = state.host.rackId;
    s.vnis = new Set(state.vnis);
    s.nets = new Set(ports.filter((p) => p.hostId === s.hostId).map((p) => p.networkId));
    s.vips = new Set(state.vips.map((v) => v.vipId));
    s.sent = s.owed = version;
    // Whatever committed after the snapshot's version: from the log, then live.
    await this.catchUp(s, version, gen);
  }

  private sendChanges(s: Session, changes: readonly LoggedChange[], catchingUp = false): void {
    const fresh = changes.filter((c) => c.version > s.sent);
    const last = fresh.at(-1);
    if (!last) return;
    const view = { hostId: s.hostId, rackId: s.rackId, vnis: s.vnis, nets: s.nets, vips: s.vips, vm: s.vm };
    const relevant: LoggedChange[] = [];
    let resync = false;
    for (const c of fresh) {
      if (!concerns(c, view)) continue;
      relevant.push(c);
      if ('port' in c && c.port.hostId === s.hostId && c.kind !== 'port.deleted') {
        // A first port on a network new to the host: the agent needs that network's
        // record and, on a new VNI, every remote port there too.
        if (!s.nets.has(c.port.networkId) || (c.port.vni !== null && !s.vnis.has(c.port.vni))) resync = true;
        s.nets.add(c.port.networkId);
      }
      // Moved to another rack: other BGP peers.
      if (c.kind === 'host.updated' && c.host.hostId === s.hostId && c.host.rackId !== s.rackId) resync = true;
      if ('vip' in c) {
        if (c.kind !== 'vip.deleted' && c.vip.backends.some((b) => b.hostId === s.hostId)) s.vips.add(c.vip.vipId);
        else s.vips.delete(c.vip.vipId);
      }
    }
    if (resync) {
      this.snapshot(s, 'resync').catch(() => s.sock.destroy());
      return;
    }
    // Live, the index is at exactly this batch: its VNIs for the host are the truth
    // (a VNI whose last local port left is dropped). Catching up from the log the
    // index is ahead, so the session keeps the set it started with.
    if (!catchingUp) s.vnis = new Set(this.index.vnisOf(s.hostId));
    s.sent = last.version;
    if (relevant.length === 0) {
      if (s.acked >= s.owed) s.applied = last.version;
      return;
    }
    s.owed = last.version;
    this.send(s, { t: 'delta', version: last.version, changes: relevant, vnis: [...s.vnis].sort((a, b) => a - b), fingerprint: changeFingerprint(last) });
    if (s.sock.writableLength - s.baseline > SLOW_BYTES) {
      // Too slow to keep up: stop queueing deltas, send a fresh snapshot once it drains.
      s.mode = 'stalled';
    }
  }

  private ack(s: Session, version: number): void {
    if (version <= s.acked || version > s.sent) return;
    s.acked = version;
    s.applied = version >= s.owed ? s.sent : version;
  }

  private beat(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (now - s.lastRx > this.deadMs) s.sock.destroy();
      else this.send(s, { t: 'ping' });
    }
  }

  private metrics(registry: prom.Registry): void {
    const self = this;
    this.revokedSessions = new prom.Counter({
      name: 'weft_stream_sessions_revoked_total',
      help: 'Push-stream sessions this server closed because their token (reason token) or their host (reason host) was deleted',
      labelNames: ['reason'] as const,
      registers: [registry],
    });
    for (const reason of ['token', 'host'] as const) this.revokedSessions.inc({ reason }, 0);
    this.snapshots = new prom.Counter({
      name: 'weft_stream_snapshots_total',
      help: "Snapshots this server sent to agents, by why: initial, behind, vnis, resync, slow, and the log mismatches ahead (the agent applied versions this log does not have) and diverged (its change at the agent's version is another)",
      labelNames: ['reason'] as const,
      registers: [registry],
    });
    for (const reason of SNAPSHOT_REASONS) this.snapshots.inc({ reason }, 0);
    new prom.Gauge({
      name: 'weft_agents_connected',
      help: 'Agents connected to this server by the push stream',
      registers: [registry],
      collect() {
        this.set(self.status().length);
      },
    });
    new prom.Gauge({
      name: 'weft_agent_applied_version',
      help: 'Change-log version each connected host has applied',
      labelNames: ['host'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const a of self.status()) this.set({ host: a.hostId }, a.appliedVersion);
      },
    });
    new prom.Gauge({
      name: 'weft_agent_lag',
      help: 'Changes each connected host is behind the newest one',
      labelNames: ['host'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const a of self.status()) this.set({ host: a.hostId }, a.lag);
      },
    });
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const s of this.sessions.values()) s.sock.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
