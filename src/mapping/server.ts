// The SVP v1 server, a pipeline per connection: framer (framer.ts: bytes to
// checked frames) -> parser (each op's payload size, codec.ts's decoders) ->
// backend (backend.ts: the index for lookups, the store's shoot-down log)
// -> serializer (codec.ts's writers, into one reply buffer per read). A
// broken frame closes that one connection; a peer that stops reading is
// paused, not buffered.
import { createServer, type Server, type Socket } from 'node:net';
import prom from 'prom-client';
import type { Store } from '../store/store.js';
import { ConnectionCaps, type ConnectionLimits } from '../sys/conn-caps.js';
import { listenOn } from '../sys/listen.js';
import { IndexBackend, type SvpBackend } from './backend.js';
import { decodeLogReq, decodeLogRm, encodeFrame, logAck, statusOnly, writeEmptyFrame, writeStatusFrame, writeVl2AckFrame, writeVl3AckFrame } from './codec.js';
import { FrameError, Framer } from './framer.js';
import type { MappingIndex } from './index.js';
import { HEADER_SIZE, L3_TYPE, OP, SIZE, STATUS, VXLAN_PORT } from './wire.js';

/** Async requests (log reads and removals) one connection may have open at once. */
const MAX_INFLIGHT = 32;
/** Bytes written but not yet taken by the peer before we stop reading from it. */
const HIGH_WATER = 1024 * 1024;

/** The largest reply to one request that is answered inline (VL3_ACK). */
const MAX_INLINE_REPLY = HEADER_SIZE + SIZE.VL3_ACK;
/**
 * SVP connections in total and per source: varpd keeps one connection per
 * hypervisor (a few while it reconnects), and a server serves thousands.
 */
export const DEFAULT_SVP_LIMITS: ConnectionLimits = { max: 4096, perSource: 16 };
/** A connection with no traffic for this long is closed: varpd pings every few seconds when it keeps one open, and reconnects at need. */
export const DEFAULT_SVP_IDLE_MS = 300_000;

export interface SvpServerOptions {
  /** Connection caps (DEFAULT_SVP_LIMITS). */
  limits?: ConnectionLimits | undefined;
  /** Idle timeout in ms (DEFAULT_SVP_IDLE_MS). */
  idleMs?: number | undefined;
}

const COUNTED_OPS = ['PING', 'VL2_REQ', 'VL3_REQ', 'LOG_REQ', 'LOG_RM', 'BULK_REQ', 'other'] as const;

const EMPTY = Buffer.alloc(0);

/** The parser's verdict on a request whose payload is the wrong size for its op. */
function wrongSize(name: string, size: number, want: number): never {
  throw new FrameError('malformed', `${name} of ${size} bytes: must be ${want}`);
}

/** Registers the server's metrics; counts are plain numbers on the hot path, read at scrape time. */
export function svpMetrics(registry: prom.Registry, counts: Record<string, number>, closed: Record<string, number>, open: () => number): void {
  new prom.Counter({
    name: 'weft_svp_requests_total',
    help: 'SVP requests by op',
    labelNames: ['op'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [op, n] of Object.entries(counts)) this.inc({ op }, n);
    },
  });
  new prom.Counter({
    name: 'weft_svp_connections_closed_total',
    help: 'SVP connections the server closed, by reason (crc, version, size, malformed, error, idle)',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(closed)) this.inc({ reason }, n);
    },
  });
  new prom.Gauge({
    name: 'weft_svp_connections',
    help: 'Open SVP connections',
    registers: [registry],
    collect() {
      this.set(open());
    },
  });
}

export class SvpServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  readonly counts: Record<string, number> = Object.fromEntries(COUNTED_OPS.map((o) => [o, 0]));
  readonly closed: Record<string, number> = {};
  private readonly backend: SvpBackend;
  private readonly caps: ConnectionCaps;
  private readonly idleMs: number;

  /** Answers from `index` and `store` (an IndexBackend), or from `backend` when one is given (tests). */
  constructor(index: MappingIndex, store: Store, registry?: prom.Registry, backend?: SvpBackend, o: SvpServerOptions = {}) {
    this.backend = backend ?? new IndexBackend(index, store);
    this.caps = new ConnectionCaps('svp', o.limits ?? DEFAULT_SVP_LIMITS, registry);
    this.idleMs = o.idleMs ?? DEFAULT_SVP_IDLE_MS;
    this.server = createServer((s) => this.accept(s));
    if (registry) svpMetrics(registry, this.counts, this.closed, () => this.sockets.size);
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenOn(this.server, host, port);
  }

  private accept(sock: Socket): void {
    // Over a cap: closed at once, SVP having no message to say why.
    if (this.caps.admit(sock)) {
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 30_000);
    sock.setTimeout(this.idleMs, () => {
      this.closed.idle = (this.closed.idle ?? 0) + 1;
      sock.destroy();
    });
    const framer = new Framer();
    // The shoot-down log is bound to where the connection comes from (backend.ts).
    const source = sock.remoteAddress;
    const counts = this.counts;
    const backend = this.backend;
    let inflight = 0;
    const paused = () => inflight >= MAX_INFLIGHT || sock.writableLength > HIGH_WATER;
    const maybeResume = () => {
      if (sock.isPaused() && !paused() && !sock.destroyed) sock.resume();
    };
    sock.on('drain', maybeResume);
    const send = (op: number, id: number, payload: Buffer) => {
      if (!sock.destroyed) sock.write(encodeFrame(op, id, payload));
    };
    const tooMany = () => {
      throw new FrameError('malformed', `more than ${MAX_INFLIGHT} log requests in flight`);
    };
    sock.on('data', (chunk: Buffer) => {
      // Replies to lookups go straight into one buffer per read, sized for every
      // frame the read can complete and made only once one does: a read that
      // completes none (a frame sent a byte at a time) allocates nothing.
      let out = EMPTY;
      let o = 0;
      const room = framer.pending + chunk.length;
      try {
        framer.scan(chunk, (buf, at, op, id, size) => {
          if (out === EMPTY) out = Buffer.allocUnsafe(Math.ceil(room / HEADER_SIZE) * MAX_INLINE_REPLY);
          const p = at + HEADER_SIZE;
          switch (op) {
            case OP.VL2_REQ: {
              counts.VL2_REQ = (counts.VL2_REQ as number) + 1;
              if (size !== SIZE.VL2_REQ) wrongSize('VL2_REQ', size, SIZE.VL2_REQ);
              const h = backend.lookupVl2(buf, p);
              o = h ? writeVl2AckFrame(out, o, id, STATUS.OK, VXLAN_PORT, h.underlay16) : writeVl2AckFrame(out, o, id, STATUS.NOTFOUND, 0, null);
              break;
            }
            case OP.VL3_REQ: {
              counts.VL3_REQ = (counts.VL3_REQ as number) + 1;
              if (size !== SIZE.VL3_REQ) wrongSize('VL3_REQ', size, SIZE.VL3_REQ);
              const type = buf.readUInt32BE(p + 16);
              const known = type === L3_TYPE.IPV4 || type === L3_TYPE.IPV6;
              const e = known ? backend.lookupVl3(buf, p) : undefined;
              o = e
                ? writeVl3AckFrame(out, o, id, STATUS.OK, e.mac, VXLAN_PORT, e.host.underlay16)
                : writeVl3AckFrame(out, o, id, known ? STATUS.NOTFOUND : STATUS.BADL3TYPE, 0, 0, null);
              break;
            }
            case OP.PING:
              counts.PING = (counts.PING as number) + 1;
              o = writeEmptyFrame(out, o, OP.PONG, id);
              break;
            case OP.BULK_REQ:
              counts.BULK_REQ = (counts.BULK_REQ as number) + 1;
              o = writeStatusFrame(out, o, OP.BULK_ACK, id, STATUS.BADBULK);
              break;
            case OP.LOG_REQ: {
              counts.LOG_REQ = (counts.LOG_REQ as number) + 1;
              if (size !== SIZE.LOG_REQ) wrongSize('LOG_REQ', size, SIZE.LOG_REQ);
              // varpd has one log request out at a time; a peer far past that is abusing us.
              if (inflight >= MAX_INFLIGHT) tooMany();
              const req = decodeLogReq(buf.subarray(p, p + size));
              inflight++;
              backend
                .log(req, source)
                .then((r) => send(OP.LOG_ACK, id, logAck(r.status, r.entries, r.budget).payload))
                .catch(() => send(OP.LOG_ACK, id, statusOnly(STATUS.FATAL)))
                .finally(() => {
                  inflight--;
                  maybeResume();
                });
              break;
            }
            case OP.LOG_RM: {
              counts.LOG_RM = (counts.LOG_RM as number) + 1;
              const ids = decodeLogRm(buf.subarray(p, p + size));
              if (!ids) throw new FrameError('malformed', `LOG_RM of ${size} bytes: its count does not match its size`);
              if (ids.length === 0) {
                o = writeStatusFrame(out, o, OP.LOG_RM_ACK, id, STATUS.OK);
                break;
              }
              if (inflight >= MAX_INFLIGHT) tooMany();
              inflight++;
              backend
                .remove(ids, source)
                .then(() => send(OP.LOG_RM_ACK, id, statusOnly(STATUS.OK)))
                .catch(() => send(OP.LOG_RM_ACK, id, statusOnly(STATUS.FATAL)))
                .finally(() => {
                  inflight--;
                  maybeResume();
                });
              break;
            }
            default:
              // Unknown or server-bound-only ops get no reply, as varpd expects.
              counts.other = (counts.other as number) + 1;
              break;
          }
        });
      } catch (e) {
        const reason = e instanceof FrameError ? e.reason : 'error';
        this.closed[reason] = (this.closed[reason] ?? 0) + 1;
        sock.destroy();
        return;
      }
      if (o > 0) sock.write(out.subarray(0, o));
      if (paused()) sock.pause();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.sockets.delete(sock);
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
