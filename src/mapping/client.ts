// A pipelined SVP v1 client: requests carry ids, replies are matched by id
// in whatever order they come. Used by tests, benchmarks and the agent's
// lazy mode.
import { connect, type Socket } from 'node:net';
import { invalid, WeftError } from '../model/errors.js';
import { decodeLogAck, decodeVl2Ack, decodeVl3Ack, encodeFrame, type LogEntry, logReq, logRm, type Vl2Ack, type Vl3Ack, vl2Req, vl3Req } from './codec.js';
import { type Frame, Framer } from './framer.js';
import { OP } from './wire.js';

export class SvpClient {
  private readonly framer = new Framer(16 * 1024 * 1024);
  private readonly pending = new Map<number, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private closedError: Error | null = null;

  private constructor(private readonly sock: Socket) {
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.framer.push(chunk);
      } catch (e) {
        this.fail(e as Error);
        sock.destroy();
        return;
      }
      for (const f of frames) {
        const p = this.pending.get(f.header.id);
        if (!p) continue;
        this.pending.delete(f.header.id);
        p.resolve(f);
      }
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new WeftError('E_UNAVAILABLE', 'SVP connection closed')));
  }

  static connect(host: string, port: number): Promise<SvpClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, host, () => {
        s.off('error', reject);
        resolve(new SvpClient(s));
      });
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  private fail(e: Error): void {
    this.closedError ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Sends one request and resolves with its reply frame. */
  request(op: number, payload?: Buffer): Promise<Frame> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.sock.write(encodeFrame(op, id, payload));
    });
  }

  async ping(): Promise<void> {
    const f = await this.request(OP.PING);
    if (f.header.op !== OP.PONG) throw invalid('PONG op', f.header.op, `must be ${OP.PONG}`);
  }

  async vl2(mac: bigint, vnetid: number): Promise<Vl2Ack> {
    return decodeVl2Ack((await this.request(OP.VL2_REQ, vl2Req({ mac, vnetid }))).payload);
  }

  async vl3(ip: Buffer, type: number, vnetid: number): Promise<Vl3Ack> {
    return decodeVl3Ack((await this.request(OP.VL3_REQ, vl3Req({ ip, type, vnetid }))).payload);
  }

  async log(underlay16: Buffer, count: number): Promise<{ status: number; entries: LogEntry[]; bytes: number }> {
    const f = await this.request(OP.LOG_REQ, logReq({ count, ip: underlay16 }));
    const d = decodeLogAck(f.payload);
    if (!d) throw new WeftError('E_INVALID_ARG', `malformed LOG_ACK of ${f.payload.length} bytes: an entry is cut short or of unknown type`);
    return { ...d, bytes: f.payload.length };
  }

  async logRemove(ids: Buffer[]): Promise<number> {
    return (await this.request(OP.LOG_RM, logRm(ids))).payload.readUInt32BE(0);
  }

  /** Writes raw bytes (tests of malformed input). */
  raw(bytes: Buffer): void {
    this.sock.write(bytes);
  }

  close(): void {
    this.sock.destroy();
  }
}
