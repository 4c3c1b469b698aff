// Framing cost of a frame sent a byte at a time against whole frames: the SVP
// framer and the push stream's reader as they are (one buffer per split
// frame, allocated at its declared size) next to their previous versions
// (the partial frame re-concatenated on every read), in one run.
import { encodeFrame, ip16, vl3Req } from '../src/mapping/codec.js';
import { Framer } from '../src/mapping/framer.js';
import { HEADER_SIZE, OP } from '../src/mapping/wire.js';
import { MessageReader } from '../src/stream/protocol.js';
import type { Result } from './report.js';

/** The SVP framer before preallocation (headers only; CRCs are the same work in both and left out). */
class ConcatFramer {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer, visit: (buf: Buffer, at: number) => void): void {
    const buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let at = 0;
    while (buf.length - at >= HEADER_SIZE) {
      const end = at + HEADER_SIZE + buf.readUInt32BE(at + 4);
      if (buf.length < end) break;
      visit(buf, at);
      at = end;
    }
    this.buf = at === buf.length ? Buffer.alloc(0) : at === 0 ? buf : Buffer.from(buf.subarray(at));
  }
}

/** The stream reader before preallocation. */
class ConcatReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): unknown[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: unknown[] = [];
    let at = 0;
    while (this.buf.length - at >= 4) {
      const len = this.buf.readUInt32BE(at);
      if (this.buf.length - at < 4 + len) break;
      out.push(JSON.parse(this.buf.toString('utf8', at + 4, at + 4 + len)));
      at += 4 + len;
    }
    this.buf = at === this.buf.length ? Buffer.alloc(0) : at === 0 ? this.buf : Buffer.from(this.buf.subarray(at));
    return out;
  }
}

function streamFrame(bytes: number): Buffer {
  const body = Buffer.from(JSON.stringify({ t: 'routing', routing: { lastError: 'x'.repeat(bytes - 40) } }));
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length);
  body.copy(out, 4);
  return out;
}

/** CPU µs per frame to cut `frames` copies of `frame` fed in chunks of `chunk` bytes. */
function measure(frame: Buffer, frames: number, chunk: number, feed: (b: Buffer) => number): number {
  const all = Buffer.concat(Array.from({ length: frames }, () => frame));
  const pieces: Buffer[] = [];
  for (let at = 0; at < all.length; at += chunk) pieces.push(all.subarray(at, at + chunk));
  const t0 = process.cpuUsage();
  let n = 0;
  for (const p of pieces) n += feed(p);
  const t = process.cpuUsage(t0);
  if (n !== frames) throw new Error(`cut ${n} frames of ${frames}`);
  return Math.round(((t.user + t.system) / frames) * 100) / 100;
}

export async function framing(): Promise<Result[]> {
  const frames = Number(process.env.BENCH_FRAMING_FRAMES ?? 2000);
  const svp = encodeFrame(OP.VL3_REQ, 1, vl3Req({ ip: ip16(4, 0x0a000001n), type: 1, vnetid: 5000 }));
  const rows: Result[] = [];
  const cases: { what: string; frame: Buffer; count: number; concat: () => (b: Buffer) => number; prealloc: () => (b: Buffer) => number }[] = [
    {
      what: `svp VL3_REQ (${svp.length} B)`,
      frame: svp,
      count: frames,
      concat: () => {
        const f = new ConcatFramer();
        return (b) => {
          let n = 0;
          f.push(b, () => n++);
          return n;
        };
      },
      prealloc: () => {
        const f = new Framer();
        return (b) => {
          let n = 0;
          f.scan(b, () => n++);
          return n;
        };
      },
    },
    ...[1024, 16 * 1024].map((size) => {
      const frame = streamFrame(size);
      return {
        what: `stream frame (${frame.length} B)`,
        frame,
        count: Math.max(20, Math.floor((frames * 64) / size)),
        concat: () => {
          const r = new ConcatReader();
          return (b: Buffer) => r.push(b).length;
        },
        prealloc: () => {
          const r = new MessageReader(64 * 1024);
          return (b: Buffer) => r.push(b).length;
        },
      };
    }),
  ];
  for (const c of cases)
    for (const chunk of [1, c.frame.length]) {
      // Each once to warm the JIT, then measured, alternating.
      measure(c.frame, c.count, chunk, c.concat());
      measure(c.frame, c.count, chunk, c.prealloc());
      const concatUs = measure(c.frame, c.count, chunk, c.concat());
      const preallocUs = measure(c.frame, c.count, chunk, c.prealloc());
      rows.push({
        bench: 'framing',
        frame: c.what,
        chunk: chunk === 1 ? '1 byte' : 'whole',
        frames: c.count,
        concat_us_per_frame: concatUs,
        prealloc_us_per_frame: preallocUs,
        speedup: Math.round((concatUs / Math.max(preallocUs, 0.01)) * 10) / 10,
      });
    }
  return rows;
}
