// The SVP v1 server: per connection, framer -> handler -> replies written
// in one batch per read. VL2/VL3 are answered from the in-memory index;
// LOG_REQ/LOG_RM from the store's shoot-down log. A broken frame closes
// that one connection; a peer that stops reading is paused, not buffered.
import { createServer, type Server, type Socket } from 'node:net';
import prom from 'prom-client';
import { parseIp, parseMac } from '../model/addr.js';
import type { Store } from '../store/store.js';
import { listenOn } from '../sys/listen.js';
import { decodeLogReq, decodeLogRm, encodeFrame, ip16, type LogEntry, logAck, statusOnly } from './codec.js';
import { crc32Range } from './crc32.js';
import { FrameError, Framer } from './framer.js';
import type { MappingIndex } from './index.js';
import { HEADER_SIZE, L3_TYPE, OP, SIZE, STATUS, VXLAN_PORT } from './wire.js';

/** Async requests (log reads and removals) one connection may have open at once. */
const MAX_INFLIGHT = 32;
/** The most a LOG_ACK may carry, whatever budget the client asks for. */
const MAX_LOG_BUDGET = 64 * 1024;
/** Bytes written but not yet taken by the peer before we stop reading from it. */
const HIGH_WATER = 1024 * 1024;

/** The largest reply to one request that is answered inline (VL3_ACK). */
const MAX_INLINE_REPLY = HEADER_SIZE + SIZE.VL3_ACK;
const COUNTED_OPS = ['PING', 'VL2_REQ', 'VL3_REQ', 'LOG_REQ', 'LOG_RM', 'BULK_REQ', 'other'] as const;

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
    help: 'SVP connections the server closed, by reason (crc, version, size, malformed, error)',
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
  /** Hosts known to be marked as SVP clients in the store (saves a write per poll). */
  private readonly svpClients = new Set<string>();

  constructor(
    private readonly index: MappingIndex,
    private readonly store: Store,
    registry?: prom.Registry,
  ) {
    this.server = createServer((s) => this.accept(s));
    if (registry) svpMetrics(registry, this.counts, this.closed, () => this.sockets.size);
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenOn(this.server, host, port);
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 30_000);
    const framer = new Framer();
    const counts = this.counts;
    const index = this.index;
    let inflight = 0;
    const paused = () => inflight >= MAX_INFLIGHT || sock.writableLength > HIGH_WATER;
    const maybeResume = () => {
      if (sock.isPaused() && !paused() && !sock.destroyed) sock.resume();
    };
    sock.on('drain', maybeResume);
    const send = (op: number, id: number, payload: Buffer) => {
      if (!sock.destroyed) sock.write(encodeFrame(op, id, payload));
    };
    const malformed = () => {
      throw new FrameError('malformed', 'request of the wrong size for its op');
    };
    sock.on('data', (chunk: Buffer) => {
      // Replies to lookups go straight into one buffer: no allocation per request.
      const out = Buffer.allocUnsafe(Math.ceil((framer.pending + chunk.length) / HEADER_SIZE) * MAX_INLINE_REPLY);
      let o = 0;
      /** Writes a reply header for a payload of `size` at o; the caller fills the payload, then seal(). */
      const head = (op: number, id: number, size: number) => {
        out.writeUInt32BE(0x00010000 | op, o);
        out.writeUInt32BE(size, o + 4);
        out.writeUInt32BE(id, o + 8);
        out.writeUInt32BE(0, o + 12);
      };
      const seal = (size: number) => {
        const end = o + HEADER_SIZE + size;
        out.writeUInt32BE(crc32Range(out, o, end), o + 12);
        o = end;
      };
      try {
        framer.scan(chunk, (buf, at, op, id, size) => {
          const p = at + HEADER_SIZE;
          switch (op) {
            case OP.VL2_REQ: {
              counts.VL2_REQ = (counts.VL2_REQ as number) + 1;
              if (size !== SIZE.VL2_REQ) malformed();
              const h = index.lookupVl2(buf, p);
              head(OP.VL2_ACK, id, SIZE.VL2_ACK);
              if (h) {
                out.writeUInt32BE((STATUS.OK << 16) | VXLAN_PORT, o + 16);
                out.set(h.underlay16, o + 20);
              } else out.fill(0, o + 16, o + 36).writeUInt16BE(STATUS.NOTFOUND, o + 16);
              seal(SIZE.VL2_ACK);
              break;
            }
            case OP.VL3_REQ: {
              counts.VL3_REQ = (counts.VL3_REQ as number) + 1;
              if (size !== SIZE.VL3_REQ) malformed();
              head(OP.VL3_ACK, id, SIZE.VL3_ACK);
              const type = buf.readUInt32BE(p + 16);
              const e = type === L3_TYPE.IPV4 || type === L3_TYPE.IPV6 ? index.lookupVl3(buf, p) : undefined;
              if (e) {
                out.writeUInt32BE(STATUS.OK, o + 16);
                out.writeUIntBE(e.mac, o + 20, 6);
                out.writeUInt16BE(VXLAN_PORT, o + 26);
                out.set(e.host.underlay16, o + 28);
              } else out.fill(0, o + 16, o + 44).writeUInt32BE(type === L3_TYPE.IPV4 || type === L3_TYPE.IPV6 ? STATUS.NOTFOUND : STATUS.BADL3TYPE, o + 16);
              seal(SIZE.VL3_ACK);
              break;
            }
            case OP.PING:
              counts.PING = (counts.PING as number) + 1;
              head(OP.PONG, id, 0);
              seal(0);
              break;
            case OP.BULK_REQ:
              counts.BULK_REQ = (counts.BULK_REQ as number) + 1;
              head(OP.BULK_ACK, id, 4);
              out.writeUInt32BE(STATUS.BADBULK, o + 16);
              seal(4);
              break;
            case OP.LOG_REQ: {
              counts.LOG_REQ = (counts.LOG_REQ as number) + 1;
              if (size !== SIZE.LOG_REQ) malformed();
              // varpd has one log request out at a time; a peer far past that is abusing us.
              if (inflight >= MAX_INFLIGHT) malformed();
              const req = Buffer.from(buf.subarray(p, p + size));
              inflight++;
              this.logRequest(req)
                .then((payload) => send(OP.LOG_ACK, id, payload))
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
              if (!ids) malformed();
              if ((ids as Buffer[]).length === 0) {
                head(OP.LOG_RM_ACK, id, 4);
                out.writeUInt32BE(STATUS.OK, o + 16);
                seal(4);
                break;
              }
              if (inflight >= MAX_INFLIGHT) malformed();
              inflight++;
              this.store
                .removeShootdowns((ids as Buffer[]).map((b) => b.toString('hex')))
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

  /** LOG_ACK for the host whose underlay asks: its entries, oldest first, within the budget. */
  private async logRequest(payload: Buffer): Promise<Buffer> {
    const req = decodeLogReq(payload);
    const budget = Math.min(req.count, MAX_LOG_BUDGET);
    const host = this.index.hostByUnderlay16(req.ip);
    if (!host) return logAck(STATUS.NOTFOUND, [], budget).payload;
    // A host that polls the log is an SVP client from now on: later changes write it entries.
    if (!this.svpClients.has(host.hostId)) {
      await this.store.write(async (tx) => {
        const h = await tx.get('hosts', host.hostId);
        if (h && Number(h.svpClient) !== 1) await tx.update('hosts', host.hostId, { svpClient: 1 });
      });
      this.svpClients.add(host.hostId);
    }
    const most = Math.max(0, Math.floor((budget - SIZE.LOG_ACK_HEAD) / SIZE.LOG_VL2));
    // Only what this replica's index already has: a host told to look an entry up
    // again must get the new answer, not the one the shoot-down is about.
    const seen = this.index.version;
    const rows = most === 0 ? [] : (await this.store.read((tx) => tx.shootdownsOf(host.hostId, most))).filter((r) => Number(r.version) <= seen);
    const entries: LogEntry[] = rows.map((r) => {
      const id = Buffer.from(r.id, 'hex');
      if (r.kind === 'vl2') return { type: 'vl2', id, mac: parseMac('mac', r.mac).n, vnetid: r.vni };
      const ip = parseIp('ip', r.ip);
      return { type: 'vl3', id, ip: ip16(ip.family, ip.n), vlan: 0, vnetid: r.vni };
    });
    return logAck(STATUS.OK, entries, budget).payload;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
