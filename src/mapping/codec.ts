// SVP v1 messages to and from bytes: headers with their CRC, every request
// and reply body, IPv4 as IPv4-mapped IPv6. Pure: no sockets here. Replies
// have writers into a caller's buffer at an offset (the server's
// allocation-free path) and the allocating encoders are built on them.
import { crc32 } from 'node:zlib';
import { crc32Range } from './crc32.js';
import { CRC_OFFSET, HEADER_SIZE, LOG_TYPE, OP, SIZE, SVP_VERSION } from './wire.js';

export interface Header {
  version: number;
  op: number;
  size: number;
  /** Opaque; a reply echoes the request's. */
  id: number;
  crc: number;
}

/** CRC-32 (zlib) over the header with its crc field zeroed, then the payload. */
export function frameCrc(header: Buffer, payload: Buffer): number {
  const h = Buffer.from(header.subarray(0, HEADER_SIZE));
  h.writeUInt32BE(0, CRC_OFFSET);
  return crc32(payload, crc32(h));
}

// The writers below run once per lookup: plain byte stores, which V8 inlines
// (with Buffer's writeUInt32BE and friends nested in them a reply measured
// about 1.5x the cost). Like any typed-array store they do not check
// bounds: the caller sizes `out`.
function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}
function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/**
 * Writes a header for a `size`-byte payload at `at`, its crc field zero;
 * returns where the payload goes. Fill the payload, then `sealFrame`.
 */
export function writeHeader(out: Uint8Array, at: number, op: number, id: number, size: number): number {
  put16(out, at, SVP_VERSION);
  put16(out, at + 2, op);
  put32(out, at + 4, size);
  put32(out, at + 8, id);
  put32(out, at + CRC_OFFSET, 0);
  return at + HEADER_SIZE;
}

/**
 * Computes and writes the CRC of the frame written at `at` (header by
 * `writeHeader`, so its crc field is still zero, then `size` bytes of
 * payload); returns the offset after it. In JS, allocation-free: for the
 * small replies of lookups.
 */
export function sealFrame(out: Uint8Array, at: number, size: number): number {
  const end = at + HEADER_SIZE + size;
  put32(out, at + CRC_OFFSET, crc32Range(out, at, end));
  return end;
}

/** A whole frame: header (with CRC) and payload. */
export function encodeFrame(op: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeHeader(out, 0, op, id, payload.length);
  payload.copy(out, HEADER_SIZE);
  // zlib's native CRC: these frames may be a 64 KiB LOG_ACK.
  out.writeUInt32BE(crc32(payload, crc32(out.subarray(0, HEADER_SIZE))), CRC_OFFSET);
  return out;
}

export function decodeHeader(b: Buffer, at = 0): Header {
  return {
    version: b.readUInt16BE(at),
    op: b.readUInt16BE(at + 2),
    size: b.readUInt32BE(at + 4),
    id: b.readUInt32BE(at + 8),
    crc: b.readUInt32BE(at + CRC_OFFSET),
  };
}

// --- addresses ------------------------------------------------------------

/** An address as SVP carries it: 16 bytes, IPv4 as ::ffff:a.b.c.d. */
export function ip16(family: 4 | 6, n: bigint): Buffer {
  const b = Buffer.alloc(16);
  if (family === 4) {
    b.writeUInt16BE(0xffff, 10);
    b.writeUInt32BE(Number(n), 12);
  } else {
    b.writeBigUInt64BE(n >> 64n, 0);
    b.writeBigUInt64BE(n & 0xffffffffffffffffn, 8);
  }
  return b;
}

/** The 16 bytes back to an address; IPv4-mapped becomes IPv4. */
export function fromIp16(b: Buffer, at = 0): { family: 4 | 6; n: bigint } {
  const hi = b.readBigUInt64BE(at);
  const lo = b.readBigUInt64BE(at + 8);
  if (hi === 0n && lo >> 32n === 0xffffn) return { family: 4, n: lo & 0xffffffffn };
  return { family: 6, n: (hi << 64n) | lo };
}

export function mac6(n: bigint): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(Number(n), 0, 6);
  return b;
}

// --- requests (client -> server) -------------------------------------------

export interface Vl2Req {
  mac: bigint;
  vnetid: number;
}
export interface Vl3Req {
  ip: Buffer;
  type: number;
  vnetid: number;
}
export interface LogReq {
  count: number;
  ip: Buffer;
}

export const vl2Req = (r: Vl2Req): Buffer => {
  const b = Buffer.alloc(SIZE.VL2_REQ);
  mac6(r.mac).copy(b, 0);
  b.writeUInt32BE(r.vnetid, 8);
  return b;
};
export const decodeVl2Req = (p: Buffer): Vl2Req => ({ mac: BigInt(p.readUIntBE(0, 6)), vnetid: p.readUInt32BE(8) });

export const vl3Req = (r: Vl3Req): Buffer => {
  const b = Buffer.alloc(SIZE.VL3_REQ);
  r.ip.copy(b, 0, 0, 16);
  b.writeUInt32BE(r.type, 16);
  b.writeUInt32BE(r.vnetid, 20);
  return b;
};
export const decodeVl3Req = (p: Buffer): Vl3Req => ({ ip: Buffer.from(p.subarray(0, 16)), type: p.readUInt32BE(16), vnetid: p.readUInt32BE(20) });

export const logReq = (r: LogReq): Buffer => {
  const b = Buffer.alloc(SIZE.LOG_REQ);
  b.writeUInt32BE(r.count, 0);
  r.ip.copy(b, 4, 0, 16);
  return b;
};
export const decodeLogReq = (p: Buffer): LogReq => ({ count: p.readUInt32BE(0), ip: Buffer.from(p.subarray(4, 20)) });

export function logRm(ids: Buffer[]): Buffer {
  const b = Buffer.alloc(SIZE.LOG_RM_HEAD + SIZE.LOG_ID * ids.length);
  b.writeUInt32BE(ids.length, 0);
  ids.forEach((id, i) => {
    id.copy(b, SIZE.LOG_RM_HEAD + i * SIZE.LOG_ID, 0, SIZE.LOG_ID);
  });
  return b;
}

/** The ids of a LOG_RM, or null when its count does not match its size. */
export function decodeLogRm(p: Buffer): Buffer[] | null {
  if (p.length < SIZE.LOG_RM_HEAD) return null;
  const count = p.readUInt32BE(0);
  if (p.length !== SIZE.LOG_RM_HEAD + count * SIZE.LOG_ID) return null;
  const ids: Buffer[] = [];
  for (let i = 0; i < count; i++) ids.push(Buffer.from(p.subarray(SIZE.LOG_RM_HEAD + i * SIZE.LOG_ID, SIZE.LOG_RM_HEAD + (i + 1) * SIZE.LOG_ID)));
  return ids;
}

// --- replies (server -> client) -------------------------------------------

export interface Vl2Ack {
  status: number;
  port: number;
  addr: Buffer;
}
export interface Vl3Ack {
  status: number;
  mac: bigint;
  uport: number;
  uip: Buffer;
}

/**
 * Writes a VL2_ACK payload (SIZE.VL2_ACK bytes) at `at`: note the u16
 * status (VL3_ACK's is u32). `addr` is 16 bytes; null is written as zeros
 * (NOTFOUND). Allocates nothing.
 */
export function writeVl2Ack(out: Uint8Array, at: number, status: number, port: number, addr: Uint8Array | null): void {
  put16(out, at, status);
  put16(out, at + 2, port);
  if (addr) out.set(addr, at + 4);
  else out.fill(0, at + 4, at + SIZE.VL2_ACK);
}

/**
 * Writes a VL3_ACK payload (SIZE.VL3_ACK bytes) at `at`; `mac` is 48 bits as
 * a number, `uip` 16 bytes; null is written as zeros (NOTFOUND). Allocates
 * nothing.
 */
export function writeVl3Ack(out: Uint8Array, at: number, status: number, mac: number, uport: number, uip: Uint8Array | null): void {
  put32(out, at, status);
  // 48 bits: the high 16, then the low 32 (exact for a MAC held in a double).
  put16(out, at + 4, Math.floor(mac / 0x100000000));
  put32(out, at + 6, mac >>> 0);
  put16(out, at + 10, uport);
  if (uip) out.set(uip, at + 12);
  else out.fill(0, at + 12, at + SIZE.VL3_ACK);
}

/** Writes a status-only payload (SIZE.STATUS bytes: BULK_ACK, LOG_RM_ACK, a failed LOG_ACK) at `at`. */
export function writeStatus(out: Uint8Array, at: number, status: number): void {
  put32(out, at, status);
}

/** A whole VL2_ACK frame at `at` (header, payload, CRC); returns the offset after it. */
export function writeVl2AckFrame(out: Uint8Array, at: number, id: number, status: number, port: number, addr: Uint8Array | null): number {
  writeVl2Ack(out, writeHeader(out, at, OP.VL2_ACK, id, SIZE.VL2_ACK), status, port, addr);
  return sealFrame(out, at, SIZE.VL2_ACK);
}

/** A whole VL3_ACK frame at `at` (header, payload, CRC); returns the offset after it. */
export function writeVl3AckFrame(out: Uint8Array, at: number, id: number, status: number, mac: number, uport: number, uip: Uint8Array | null): number {
  writeVl3Ack(out, writeHeader(out, at, OP.VL3_ACK, id, SIZE.VL3_ACK), status, mac, uport, uip);
  return sealFrame(out, at, SIZE.VL3_ACK);
}

/** A whole frame of `op` whose payload is a status word (BULK_ACK, LOG_RM_ACK) at `at`; returns the offset after it. */
export function writeStatusFrame(out: Uint8Array, at: number, op: number, id: number, status: number): number {
  writeStatus(out, writeHeader(out, at, op, id, SIZE.STATUS), status);
  return sealFrame(out, at, SIZE.STATUS);
}

/** A whole frame of `op` with no payload (PONG) at `at`; returns the offset after it. */
export function writeEmptyFrame(out: Uint8Array, at: number, op: number, id: number): number {
  writeHeader(out, at, op, id, 0);
  return sealFrame(out, at, 0);
}

/** VL2_ACK: note the u16 status (VL3_ACK's is u32). */
export const vl2Ack = (a: Vl2Ack): Buffer => {
  const b = Buffer.alloc(SIZE.VL2_ACK);
  writeVl2Ack(b, 0, a.status, a.port, a.addr.subarray(0, 16));
  return b;
};
export const decodeVl2Ack = (p: Buffer): Vl2Ack => ({ status: p.readUInt16BE(0), port: p.readUInt16BE(2), addr: Buffer.from(p.subarray(4, 20)) });

export const vl3Ack = (a: Vl3Ack): Buffer => {
  const b = Buffer.alloc(SIZE.VL3_ACK);
  writeVl3Ack(b, 0, a.status, Number(a.mac), a.uport, a.uip.subarray(0, 16));
  return b;
};
export const decodeVl3Ack = (p: Buffer): Vl3Ack => ({
  status: p.readUInt32BE(0),
  mac: BigInt(p.readUIntBE(4, 6)),
  uport: p.readUInt16BE(10),
  uip: Buffer.from(p.subarray(12, 28)),
});

export const statusOnly = (status: number): Buffer => {
  const b = Buffer.alloc(SIZE.STATUS);
  writeStatus(b, 0, status);
  return b;
};

export type LogEntry = { type: 'vl2'; id: Buffer; mac: bigint; vnetid: number } | { type: 'vl3'; id: Buffer; ip: Buffer; vlan: number; vnetid: number };

export const entrySize = (e: LogEntry): number => (e.type === 'vl2' ? SIZE.LOG_VL2 : SIZE.LOG_VL3);

/**
 * LOG_ACK: the status word, then as many entries, in order, as fit in
 * `budget` bytes, the status word included (Portolan forgot it and
 * overflowed varpd's buffer). Returns the payload and how many fitted.
 */
export function logAck(status: number, entries: LogEntry[], budget: number): { payload: Buffer; taken: number } {
  let size = SIZE.LOG_ACK_HEAD;
  let taken = 0;
  for (const e of entries) {
    if (size + entrySize(e) > budget) break;
    size += entrySize(e);
    taken++;
  }
  const b = Buffer.alloc(size);
  b.writeUInt32BE(status, 0);
  let at = SIZE.LOG_ACK_HEAD;
  for (const e of entries.slice(0, taken)) {
    if (e.type === 'vl2') {
      b.writeUInt32BE(LOG_TYPE.VL2, at);
      e.id.copy(b, at + 4, 0, 16);
      mac6(e.mac).copy(b, at + 20);
      b.writeUInt32BE(e.vnetid, at + 28);
    } else {
      b.writeUInt32BE(LOG_TYPE.VL3, at);
      e.id.copy(b, at + 4, 0, 16);
      e.ip.copy(b, at + 20, 0, 16);
      b.writeUInt16BE(e.vlan, at + 38);
      b.writeUInt32BE(e.vnetid, at + 40);
    }
    at += entrySize(e);
  }
  return { payload: b, taken };
}

/** A LOG_ACK's status and entries; null if an entry is cut short or of unknown type. */
export function decodeLogAck(p: Buffer): { status: number; entries: LogEntry[] } | null {
  if (p.length < SIZE.LOG_ACK_HEAD) return null;
  const entries: LogEntry[] = [];
  let at = SIZE.LOG_ACK_HEAD;
  while (at < p.length) {
    if (at + 4 > p.length) return null;
    const type = p.readUInt32BE(at);
    if (type === LOG_TYPE.VL2 && at + SIZE.LOG_VL2 <= p.length) {
      entries.push({ type: 'vl2', id: Buffer.from(p.subarray(at + 4, at + 20)), mac: BigInt(p.readUIntBE(at + 20, 6)), vnetid: p.readUInt32BE(at + 28) });
      at += SIZE.LOG_VL2;
    } else if (type === LOG_TYPE.VL3 && at + SIZE.LOG_VL3 <= p.length) {
      entries.push({
        type: 'vl3',
        id: Buffer.from(p.subarray(at + 4, at + 20)),
        ip: Buffer.from(p.subarray(at + 20, at + 36)),
        vlan: p.readUInt16BE(at + 38),
        vnetid: p.readUInt32BE(at + 40),
      });
      at += SIZE.LOG_VL3;
    } else return null;
  }
  return { status: p.readUInt32BE(0), entries };
}
