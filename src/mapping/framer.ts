// Cuts a TCP byte stream into SVP frames. Checks version, size and CRC on
// every frame; the first bad one is a FrameError, after which the caller
// closes that one connection (the stream can no longer be trusted).
import { decodeHeader, frameCrc, type Header } from './codec.js';
import { HEADER_SIZE, MAX_REQUEST_PAYLOAD, SVP_VERSION } from './wire.js';

export class FrameError extends Error {
  constructor(
    readonly reason: 'version' | 'size' | 'crc',
    message: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

export interface Frame {
  header: Header;
  payload: Buffer;
}

export class Framer {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxPayload: number = MAX_REQUEST_PAYLOAD) {}

  /** Bytes held while waiting for the rest of a frame (bounded by one frame). */
  get pending(): number {
    return this.buf.length;
  }

  /**
   * Appends `chunk` and returns every complete frame now available, in
   * order. Throws FrameError on the first bad header or CRC; a header is
   * checked as soon as its 16 bytes are in, so an oversized frame is
   * refused before its payload is buffered.
   */
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    let at = 0;
    while (this.buf.length - at >= HEADER_SIZE) {
      const header = decodeHeader(this.buf, at);
      if (header.version !== SVP_VERSION) throw new FrameError('version', `version ${header.version}, only ${SVP_VERSION} is spoken`);
      if (header.size > this.maxPayload) throw new FrameError('size', `payload of ${header.size} bytes exceeds ${this.maxPayload}`);
      if (this.buf.length - at < HEADER_SIZE + header.size) break;
      const frame = this.buf.subarray(at, at + HEADER_SIZE + header.size);
      const payload = frame.subarray(HEADER_SIZE);
      if (frameCrc(frame, payload) !== header.crc) throw new FrameError('crc', `bad CRC on op ${header.op} id ${header.id}`);
      out.push({ header, payload });
      at += HEADER_SIZE + header.size;
    }
    // Keep only the unfinished tail; copy it so the consumed chunk can be freed.
    this.buf = at === 0 ? this.buf : Buffer.from(this.buf.subarray(at));
    return out;
  }
}
