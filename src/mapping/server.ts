// The SVP v1 server: per connection, framer -> handler -> replies written
// in one batch per read. VL2/VL3 are answered from the in-memory index;
// LOG_REQ/LOG_RM from the store's shoot-down log. A broken frame closes
// that one connection; a peer that stops reading is paused, not buffered.
import { createServer, type Server, type Socket } from 'node:net';
import prom from 'prom-client';
import { parseIp, parseMac } from '../model/addr.js';
import type { Store } from '../store/store.js';
import { decodeLogReq, decodeLogRm, encodeFrame, ip16, type LogEntry, logAck, OPS_BY_CODE, statusOnly, vl2Ack, vl3Ack } from './codec.js';
import { FrameError, Framer } from './framer.js';
import type { MappingIndex } from './index.js';
import { L3_TYPE, OP, SIZE, STATUS, VXLAN_PORT } from './wire.js';

/** Async requests (log reads and removals) one connection may have open at once. */
const MAX_INFLIGHT = 32;
/** Bytes written but not yet taken by the peer before we stop reading from it. */
const HIGH_WATER = 1024 * 1024;

const ZERO16 = Buffer.alloc(16);
const NOTFOUND_VL2 = vl2Ack({ status: STATUS.NOTFOUND, port: 0, addr: ZERO16 });
const NOTFOUND_VL3 = vl3Ack({ status: STATUS.NOTFOUND, mac: 0n, uport: 0, uip: ZERO16 });
const BADL3 = vl3Ack({ status: STATUS.BADL3TYPE, mac: 0n, uport: 0, uip: ZERO16 });

export interface SvpMetrics {
  requests: prom.Counter<'op'>;
  closed: prom.Counter<'reason'>;
  connections: prom.Gauge;
}

export function svpMetrics(registry: prom.Registry): SvpMetrics {
  return {
    requests: new prom.Counter({ name: 'weft_svp_requests_total', help: 'SVP requests by op', labelNames: ['op'] as const, registers: [registry] }),
    closed: new prom.Counter({
      name: 'weft_svp_connections_closed_total',
      help: 'SVP connections closed by the server, by reason (crc, version, size, malformed, error)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    connections: new prom.Gauge({ name: 'weft_svp_connections', help: 'Open SVP connections', registers: [registry] }),
  };
}

export class SvpServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly index: MappingIndex,
    private readonly store: Store,
    private readonly metrics?: SvpMetrics,
  ) {
    this.server = createServer((s) => this.accept(s));
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const a = this.server.address() as { address: string; port: number };
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    this.metrics?.connections.inc();
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 30_000);
    const framer = new Framer();
    let inflight = 0;
    const paused = () => inflight >= MAX_INFLIGHT || sock.writableLength > HIGH_WATER;
    const maybeResume = () => {
      if (sock.isPaused() && !paused() && !sock.destroyed) sock.resume();
    };
    sock.on('drain', maybeResume);
    const close = (reason: string) => {
      this.metrics?.closed.inc({ reason });
      sock.destroy();
    };
    const send = (op: number, id: number, payload: Buffer) => {
      if (!sock.destroyed) sock.write(encodeFrame(op, id, payload));
    };
    sock.on('data', (chunk: Buffer) => {
      let frames: ReturnType<Framer['push']>;
      try {
        frames = framer.push(chunk);
      } catch (e) {
        close(e instanceof FrameError ? e.reason : 'error');
        return;
      }
      const out: Buffer[] = [];
      for (const { header, payload } of frames) {
        const op = header.op;
        this.metrics?.requests.inc({ op: OPS_BY_CODE[op] ?? 'unknown' });
        switch (op) {
          case OP.PING:
            out.push(encodeFrame(OP.PONG, header.id));
            break;
          case OP.VL2_REQ: {
            if (payload.length !== SIZE.VL2_REQ) return close('malformed');
            const h = this.index.lookupVl2(payload);
            out.push(encodeFrame(OP.VL2_ACK, header.id, h ? vl2Ack({ status: STATUS.OK, port: VXLAN_PORT, addr: h.underlay16 }) : NOTFOUND_VL2));
            break;
          }
          case OP.VL3_REQ: {
            if (payload.length !== SIZE.VL3_REQ) return close('malformed');
            const type = payload.readUInt32BE(16);
            if (type !== L3_TYPE.IPV4 && type !== L3_TYPE.IPV6) {
              out.push(encodeFrame(OP.VL3_ACK, header.id, BADL3));
              break;
            }
            const e = this.index.lookupVl3(payload);
            out.push(
              encodeFrame(
                OP.VL3_ACK,
                header.id,
                e ? vl3Ack({ status: STATUS.OK, mac: BigInt(e.mac), uport: VXLAN_PORT, uip: e.host.underlay16 }) : NOTFOUND_VL3,
              ),
            );
            break;
          }
          case OP.BULK_REQ:
            out.push(encodeFrame(OP.BULK_ACK, header.id, statusOnly(STATUS.BADBULK)));
            break;
          case OP.LOG_REQ: {
            if (payload.length !== SIZE.LOG_REQ) return close('malformed');
            inflight++;
            this.logRequest(payload)
              .then((p) => send(OP.LOG_ACK, header.id, p))
              .catch(() => send(OP.LOG_ACK, header.id, statusOnly(STATUS.FATAL)))
              .finally(() => {
                inflight--;
                maybeResume();
              });
            break;
          }
          case OP.LOG_RM: {
            const ids = decodeLogRm(payload);
            if (!ids) return close('malformed');
            inflight++;
            this.store
              .write((tx) => tx.removeShootdowns(ids.map((b) => b.toString('hex'))))
              .then(() => send(OP.LOG_RM_ACK, header.id, statusOnly(STATUS.OK)))
              .catch(() => send(OP.LOG_RM_ACK, header.id, statusOnly(STATUS.FATAL)))
              .finally(() => {
                inflight--;
                maybeResume();
              });
            break;
          }
          default:
            // Unknown or server-bound-only ops get no reply, as varpd expects.
            break;
        }
      }
      if (out.length > 0) sock.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
      if (paused()) sock.pause();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.sockets.delete(sock);
      this.metrics?.connections.dec();
    });
  }

  /** LOG_ACK for the host whose underlay asks: its entries, oldest first, within the budget. */
  private async logRequest(payload: Buffer): Promise<Buffer> {
    const req = decodeLogReq(payload);
    const host = this.index.hostByUnderlay16(req.ip);
    if (!host) return logAck(STATUS.NOTFOUND, [], req.count).payload;
    const most = Math.max(0, Math.floor((req.count - SIZE.LOG_ACK_HEAD) / SIZE.LOG_VL2));
    const rows = most === 0 ? [] : await this.store.read((tx) => tx.shootdownsOf(host.hostId, most));
    const entries: LogEntry[] = rows.map((r) => {
      const id = Buffer.from(r.id, 'hex');
      if (r.kind === 'vl2') return { type: 'vl2', id, mac: parseMac('mac', r.mac).n, vnetid: r.vni };
      const ip = parseIp('ip', r.ip);
      return { type: 'vl3', id, ip: ip16(ip.family, ip.n), vlan: 0, vnetid: r.vni };
    });
    return logAck(STATUS.OK, entries, req.count).payload;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
