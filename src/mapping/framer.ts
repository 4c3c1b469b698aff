// Cuts a TCP byte stream into SVP frames. Checks version, size and CRC on
// every frame; the first bad one is a FrameError, after which the caller
// closes that one connection (the stream can no longer be trusted).
import { WeftError } from '../model/errors.js';
import { decodeHeader, type Header } from './codec.js';
import { crc32Range } from './crc32.js';
import { CRC_OFFSET, HEADER_SIZE, MAX_REQUEST_PAYLOAD, SVP_VERSION } from './wire.js';

/**
 * A frame that breaks the protocol (E_INVALID_ARG): `reason` says how, and
 * is the label of the connection the server closes for it.
 */
export class FrameError extends WeftError {
  constructor(
    readonly reason: 'version' | 'size' | 'crc' | 'malformed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super('E_INVALID_ARG', message, undefined, options);
    this.name = 'FrameError';
  }
}

export interface Frame {
  header: Header;
  payload: Buffer;
}

/**
 * Called for each good frame with the buffer it lies in and its offset;
 * the payload is at `at + HEADER_SIZE`, `size` bytes. The bytes are only
 * valid during the call: copy what outlives it.
 */
export type FrameVisitor = (buf: Buffer, at: number, op: number, id: number, size: number) => void;

export class Framer {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxPayload: number = MAX_REQUEST_PAYLOAD) {}

  /** Bytes held while waiting for the rest of a frame (bounded by one frame). */
  get pending(): number {
    return this.buf.length;
  }

  /**
   * Appends `chunk` and visits every complete frame now available, in
   * order, allocating nothing per frame (the SVP server's hot path). Throws
   * FrameError on the first bad header or CRC; a header is checked as soon
   * as its 16 bytes are in, so an oversized frame is refused before its
   * payload is buffered. A visitor may throw FrameError('malformed') too.
   */
  scan(chunk: Buffer, visit: FrameVisitor): void {
    const buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let at = 0;
    try {
      while (buf.length - at >= HEADER_SIZE) {
        const version = buf.readUInt16BE(at);
        if (version !== SVP_VERSION) throw new FrameError('version', `version ${version}, only ${SVP_VERSION} is spoken`);
        const size = buf.readUInt32BE(at + 4);
        if (size > this.maxPayload) throw new FrameError('size', `payload of ${size} bytes exceeds ${this.maxPayload}`);
        const end = at + HEADER_SIZE + size;
        if (buf.length < end) break;
        // The CRC covers the header with its crc field read as zeros.
        if (crc32Range(buf, at, end, at + CRC_OFFSET) !== buf.readUInt32BE(at + CRC_OFFSET))
          throw new FrameError('crc', `bad CRC on op ${buf.readUInt16BE(at + 2)} id ${buf.readUInt32BE(at + 8)}`);
        visit(buf, at, buf.readUInt16BE(at + 2), buf.readUInt32BE(at + 8), size);
        at = end;
      }
    } finally {
      // Keep only the unfinished tail, copied so the consumed chunk can be freed.
      this.buf = at === buf.length ? Buffer.alloc(0) : at === 0 ? buf : Buffer.from(buf.subarray(at));
    }
  }

  /** Like scan, but returns the frames (header and a copy of the payload): for clients and tests. */
  push(chunk: Buffer): Frame[] {
    const out: Frame[] = [];
    this.scan(chunk, (buf, at, _op, _id, size) => {
      const header = decodeHeader(buf, at);
      out.push({ header, payload: Buffer.from(buf.subarray(at + HEADER_SIZE, at + HEADER_SIZE + size)) });
    });
    return out;
  }
}
