// The agent push stream on the wire: frames of a 4-byte big-endian length
// and a UTF-8 JSON message. docs/protocol.md describes every message.
import { createHash } from 'node:crypto';
import {
  changeEntity,
  type HostInfo,
  type InstanceInfo,
  type LoggedChange,
  type NetworkInfo,
  type PeerInfo,
  type PortMapping,
  type VipInfo,
} from '../model/changes.js';
import { WeftError } from '../model/errors.js';

export const STREAM_VERSION = 1;
export const STREAM_PORT = 1297;
/** No frame is larger: snapshots are sent in chunks well under it. */
export const MAX_FRAME = 8 * 1024 * 1024;
/** Ports per snapshot chunk. */
export const SNAPSHOT_CHUNK = 2000;
export const HEARTBEAT_MS = 5000;
/** A connection with nothing received for this long is dead. */
export const DEAD_MS = 15000;

/** What one host needs: its own record, every port on its VNIs, and its routing inputs. */
export interface DesiredState {
  host: HostInfo;
  /** Ports on the VNIs present on the host (its own and remote), and its own routed ports. */
  ports: PortMapping[];
  networks: NetworkInfo[];
  /** VNIs with a port on this host. */
  vnis: number[];
  /** VIPs with a backend on this host. */
  vips: VipInfo[];
  /** BGP peers of this host or its rack. */
  peers: PeerInfo[];
  /** The host's instances with what their profiles are rendered from: only for an agent whose hello has the feature "vm" (STREAM_FEATURES). */
  instances?: InstanceInfo[];
}

/**
 * What an agent may ask for in its hello's `features`: "vm", the host's
 * instances (DesiredState.instances, instance.* changes), for an agent that
 * manages its VMs. A server ignores names it does not know; an older server
 * all of them (the agent then gets no instances, and says so).
 */
export const STREAM_FEATURES = ['vm'] as const;

/** What an agent reports of its BGP sessions and VIPs (shown by `GET /v1/agents`). */
export interface AgentRouting {
  birdUp: boolean;
  inSync: boolean;
  lastError: string | null;
  sessions: {
    peerId: string | null;
    neighbor: string | null;
    state: string;
    established: boolean;
    since: string;
    lastError: string | null;
    /** Routes received (accepted + filtered), accepted and exported, over all families. */
    received: number;
    accepted: number;
    exported: number;
  }[];
  /** VIP addresses announced. */
  announced: string[];
}

/** What an agent that manages VMs reports of them (agent/vms.ts VmStatus): counts, and the failing instances with why. */
export interface AgentVms {
  running: number;
  stopped: number;
  noImage: number;
  /** At most MAX_REPORTED_VM_FAILURES, by instance id. */
  failing: { instanceId: string; reason: string }[];
}
export const MAX_REPORTED_VM_FAILURES = 50;

/** A local port its agent keeps unplugged because the port's guard is not in place. */
export interface UnguardedPort {
  portId: string;
  /** Its host-side interface (`wp…`). */
  ifname: string;
  /** `refused`: the guard cannot be rendered from the port's record (fix the record); `failed`: nft did not take it (retried). */
  kind: 'refused' | 'failed';
  reason: string;
}

/** What an agent reports of its ports' guards (shown by `GET /v1/agents`). */
export interface AgentGuards {
  /** Local ports kept unplugged because their guard is not in place. */
  unguarded: number;
  /** The first MAX_REPORTED_UNGUARDED of them, by port id. */
  ports: UnguardedPort[];
}

/** Unguarded ports an agent lists in its report (the count has them all): the report stays well under the 64 KiB agent frame. */
export const MAX_REPORTED_UNGUARDED = 50;

/** A change's fingerprint: 16 lowercase hex digits. */
export const FINGERPRINT = /^[0-9a-f]{16}$/;

/**
 * The fingerprint of a logged change: the first 64 bits of a SHA-256 of its
 * version, kind, entity id and commit time, all columns of the change log,
 * so every replica computes the same one and a restored log that wrote a
 * different change at a version gives another. An agent says in its hello
 * the fingerprint of the change at its version, and the server resumes it
 * only if its own change at that version has the same (docs/protocol.md).
 */
export function changeFingerprint(c: LoggedChange): string {
  return createHash('sha256')
    .update(`${c.version}\n${c.kind}\n${changeEntity(c)}\n${c.at}`)
    .digest('hex')
    .slice(0, 16);
}

export type AgentMessage =
  /** `fingerprint`: of the change at `version` as the server sent it (absent: an older agent, or a server that sent none). */
  | { t: 'hello'; v: number; host: string; token: string; version: number; vnis: number[]; fingerprint?: string; features?: string[] }
  | { t: 'ack'; version: number }
  | { t: 'routing'; routing: AgentRouting }
  | { t: 'guards'; guards: AgentGuards }
  | { t: 'vms'; vms: AgentVms }
  | { t: 'ping' }
  | { t: 'pong' }
  /** Console bytes from the instance's serial console (base64), and the end of a session (src/stream/console.ts). */
  | { t: 'console.data'; session: string; data: string }
  | { t: 'console.close'; session: string; reason: string };

/** At most this many bytes of console output or input in one message (base64 in it). */
export const CONSOLE_CHUNK = 16 * 1024;

/**
 * Why a server sends a snapshot: `initial` (an agent with nothing), `behind`
 * (too far behind the log), `vnis` (it lacks a VNI its host has), `ahead`
 * (it applied versions the log does not have: a restored store), `diverged`
 * (the log's change at its version is not the one it applied: a restored
 * store that wrote on), `resync` (a new VNI or rack mid-session), `slow`
 * (it stopped reading and drained again).
 */
export const SNAPSHOT_REASONS = ['initial', 'behind', 'vnis', 'ahead', 'diverged', 'resync', 'slow'] as const;
export type SnapshotReason = (typeof SNAPSHOT_REASONS)[number];

export type ServerMessage =
  /** `reason`: why mode is `snapshot`, a SnapshotReason (absent from an older server; a newer one may add reasons). */
  | { t: 'welcome'; v: number; hostId: string; mode: 'deltas' | 'snapshot'; head: number; reason?: string }
  | { t: 'snapshot.begin'; version: number }
  | { t: 'snapshot.ports'; ports: PortMapping[] }
  /** `fingerprint`: of the change at `version` (absent at version 0, and from an older server). */
  | { t: 'snapshot.end'; version: number; state: Omit<DesiredState, 'ports'>; fingerprint?: string }
  | { t: 'delta'; version: number; changes: LoggedChange[]; vnis: number[]; fingerprint?: string }
  | { t: 'ping' }
  | { t: 'pong' }
  | { t: 'error'; code: string; message: string }
  /** A serial console session for one of the host's instances: the agent attaches to its console socket (only with feature "vm"). */
  | { t: 'console.open'; session: string; instanceId: string }
  | { t: 'console.data'; session: string; data: string }
  | { t: 'console.close'; session: string; reason: string };

const str = (v: unknown, max = 300): string | null => (typeof v === 'string' ? v.slice(0, max) : null);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);

/**
 * An agent's routing report as the server keeps it: only known fields, of
 * the right types, bounded in count and length (it comes from the network).
 * Null when it is not an object.
 */
export function sanitizeRouting(raw: unknown): AgentRouting | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  const sessions = Array.isArray(r.sessions) ? r.sessions.slice(0, 64) : [];
  return {
    birdUp: r.birdUp === true,
    inSync: r.inSync === true,
    lastError: str(r.lastError, 2000),
    sessions: sessions
      .filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null)
      .map((x) => ({
        peerId: str(x.peerId, 64),
        neighbor: str(x.neighbor, 64),
        state: str(x.state, 64) ?? '',
        established: x.established === true,
        since: str(x.since, 64) ?? '',
        lastError: str(x.lastError),
        received: num(x.received),
        accepted: num(x.accepted),
        exported: num(x.exported),
      })),
    announced: (Array.isArray(r.announced) ? r.announced.slice(0, 1000) : []).map((a) => str(a, 64)).filter((a): a is string => a !== null),
  };
}

/** An agent's VM report as the server keeps it: numbers, and at most MAX_REPORTED_VM_FAILURES failures, strings bounded. */
export function sanitizeVms(raw: unknown): AgentVms | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  const failing = Array.isArray(r.failing) ? r.failing.slice(0, MAX_REPORTED_VM_FAILURES) : [];
  return {
    running: num(r.running),
    stopped: num(r.stopped),
    noImage: num(r.noImage),
    failing: failing
      .filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null)
      .map((x) => ({ instanceId: str(x.instanceId, 64) ?? '', reason: str(x.reason, 500) ?? '' })),
  };
}

/**
 * An agent's guards report as the server keeps it: the count, and the
 * ports listed (at most MAX_REPORTED_UNGUARDED, strings bounded). Its shape
 * was checked at decode (validate.ts); this bounds what a hostile agent
 * could make the server hold.
 */
export function sanitizeGuards(g: AgentGuards): AgentGuards {
  return {
    unguarded: g.unguarded,
    ports: g.ports.slice(0, MAX_REPORTED_UNGUARDED).map((p) => ({
      portId: p.portId.slice(0, 64),
      ifname: p.ifname.slice(0, 15),
      kind: p.kind,
      reason: p.reason.slice(0, 500),
    })),
  };
}

export function encode(msg: AgentMessage | ServerMessage): Buffer {
  const body = Buffer.from(JSON.stringify(msg), 'utf8');
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** A frame of the stream that cannot be read (E_INVALID_ARG): its connection is closed. */
export class StreamFrameError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_INVALID_ARG', message, undefined, options);
    this.name = 'StreamFrameError';
  }
}

/**
 * Cuts a byte stream into messages; throws StreamFrameError on an oversized
 * frame or bad JSON (after which the reader is not used again). A frame
 * split across reads is copied into one buffer of the size its length
 * declares (refused at once above `max`), not re-concatenated on every read.
 */
export class MessageReader {
  /** The unfinished frame: its 4-byte length until that is in, then its body, allocated once. */
  private part: Buffer;
  private have = 0;
  private readonly len = Buffer.alloc(4);

  constructor(private readonly max: number = MAX_FRAME) {
    this.part = this.len;
  }

  /** Bytes held of an unfinished frame. */
  get pending(): number {
    return this.part === this.len ? this.have : 4 + this.have;
  }

  private lengthAt(buf: Buffer, at: number): number {
    const len = buf.readUInt32BE(at);
    if (len > this.max) throw new StreamFrameError(`frame of ${len} bytes exceeds ${this.max}`);
    return len;
  }

  private parse(buf: Buffer, start: number, end: number): unknown {
    try {
      return JSON.parse(buf.toString('utf8', start, end));
    } catch (e) {
      throw new StreamFrameError(`frame of ${end - start} bytes is not JSON: ${(e as Error).message}`, { cause: e });
    }
  }

  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let at = 0;
    if (this.have > 0 || this.part !== this.len) {
      if (this.part === this.len) {
        const n = Math.min(4 - this.have, chunk.length);
        chunk.copy(this.len, this.have, 0, n);
        this.have += n;
        at = n;
        if (this.have < 4) return out;
        this.part = Buffer.allocUnsafe(this.lengthAt(this.len, 0));
        this.have = 0;
      }
      const n = Math.min(this.part.length - this.have, chunk.length - at);
      chunk.copy(this.part, this.have, at, at + n);
      this.have += n;
      at += n;
      if (this.have < this.part.length) return out;
      const body = this.part;
      this.part = this.len;
      this.have = 0;
      out.push(this.parse(body, 0, body.length));
    }
    while (chunk.length - at >= 4) {
      const len = this.lengthAt(chunk, at);
      if (chunk.length - at - 4 < len) {
        this.part = Buffer.allocUnsafe(len);
        this.have = chunk.copy(this.part, 0, at + 4);
        return out;
      }
      out.push(this.parse(chunk, at + 4, at + 4 + len));
      at += 4 + len;
    }
    if (at < chunk.length) this.have = chunk.copy(this.len, 0, at);
    return out;
  }
}
