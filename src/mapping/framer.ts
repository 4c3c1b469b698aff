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
  /** The unfinished frame: its header alone until that is in, then the whole frame, allocated once at its declared size. */
  private part: Buffer;
  /** Bytes of `part` filled. */
  private have = 0;
  private readonly header = Buffer.alloc(HEADER_SIZE);

  constructor(private readonly maxPayload: number = MAX_REQUEST_PAYLOAD) {
    this.part = this.header;
  }

  /** Bytes held while waiting for the rest of a frame (bounded by one frame). */
  get pending(): number {
    return this.have;
  }

  /** The payload size the header at `at` declares, once its version and size are checked. */
  private sizeAt(buf: Buffer, at: number): number {
    const version = buf.readUInt16BE(at);
    if (version !== SVP_VERSION) throw new FrameError('version', `version ${version}, only ${SVP_VERSION} is spoken`);
    const size = buf.readUInt32BE(at + 4);
    if (size > this.maxPayload) throw new FrameError('size', `payload of ${size} bytes exceeds ${this.maxPayload}`);
    return size;
  }

  private deliver(buf: Buffer, at: number, size: number, visit: FrameVisitor): void {
    const end = at + HEADER_SIZE + size;
    // The CRC covers the header with its crc field read as zeros.
    if (crc32Range(buf, at, end, at + CRC_OFFSET) !== buf.readUInt32BE(at + CRC_OFFSET))
      throw new FrameError('crc', `bad CRC on op ${buf.readUInt16BE(at + 2)} id ${buf.readUInt32BE(at + 8)}`);
    visit(buf, at, buf.readUInt16BE(at + 2), buf.readUInt32BE(at + 8), size);
  }

  /**
   * Visits every complete frame `chunk` finishes, in order. Frames whole in
   * the chunk are read where they lie (no copy, no allocation: the SVP
   * server's hot path); only a frame split across reads is copied, into one
   * buffer of the size its header declares, so a frame sent a byte at a time
   * costs one allocation, not one per byte. Throws FrameError on the first
   * bad header or CRC; a header is checked as soon as its 16 bytes are in,
   * so an oversized frame is refused before anything is allocated for it. A
   * visitor may throw FrameError('malformed') too. After a throw the framer
   * is not to be used again (the connection closes).
   */
  scan(chunk: Buffer, visit: FrameVisitor): void {
    let at = 0;
    if (this.have > 0) {
      if (this.part === this.header) {
        const n = Math.min(HEADER_SIZE - this.have, chunk.length);
        chunk.copy(this.header, this.have, 0, n);
        this.have += n;
        at = n;
        if (this.have < HEADER_SIZE) return;
        const size = this.sizeAt(this.header, 0);
        if (size > 0) {
          this.part = Buffer.allocUnsafe(HEADER_SIZE + size);
          this.header.copy(this.part, 0);
        }
      }
      const n = Math.min(this.part.length - this.have, chunk.length - at);
      chunk.copy(this.part, this.have, at, at + n);
      this.have += n;
      at += n;
      if (this.have < this.part.length) return;
      const frame = this.part;
      this.part = this.header;
      this.have = 0;
      this.deliver(frame, 0, frame.length - HEADER_SIZE, visit);
    }
    while (chunk.length - at >= HEADER_SIZE) {
      const size = this.sizeAt(chunk, at);
      if (chunk.length - at < HEADER_SIZE + size) {
        // The start of a frame: kept in a buffer of its full size.
        this.part = Buffer.allocUnsafe(HEADER_SIZE + size);
        this.have = chunk.copy(this.part, 0, at);
        return;
      }
      this.deliver(chunk, at, size, visit);
      at += HEADER_SIZE + size;
    }
    if (at < chunk.length) this.have = chunk.copy(this.header, 0, at);
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
