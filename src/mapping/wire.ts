// SVP v1 on the wire: every constant and size in one table (as illumos
// varpd and Triton's Portolan speak it; docs/protocol.md is the reference).
// The codec and framer use only these names; the unit test pins each value.

export const SVP_VERSION = 1;
export const SVP_PORT = 1296;
/** version u16, op u16, size u32, id u32, crc32 u32; big-endian. */
export const HEADER_SIZE = 16;
export const CRC_OFFSET = 12;

export const OP = {
  PING: 0x01,
  PONG: 0x02,
  VL2_REQ: 0x03,
  VL2_ACK: 0x04,
  VL3_REQ: 0x05,
  VL3_ACK: 0x06,
  BULK_REQ: 0x07,
  BULK_ACK: 0x08,
  LOG_REQ: 0x09,
  LOG_ACK: 0x0a,
  LOG_RM: 0x0b,
  LOG_RM_ACK: 0x0c,
  SHOOTDOWN: 0x0d,
} as const;
export type OpName = keyof typeof OP;

/** Payload sizes of the fixed-size messages. */
export const SIZE = {
  PING: 0,
  PONG: 0,
  /** mac[6], pad[2], vnetid u32 */
  VL2_REQ: 12,
  /** status u16, port u16, addr[16] */
  VL2_ACK: 20,
  /** ip[16], type u32, vnetid u32 */
  VL3_REQ: 24,
  /** status u32, mac[6], uport u16, uip[16] */
  VL3_ACK: 28,
  /** count u32 (reply budget in bytes), ip[16] (asking host's underlay) */
  LOG_REQ: 20,
  /** status u32: weft answers every BULK_REQ with BADBULK */
  BULK_ACK: 4,
  /** status u32 */
  LOG_RM_ACK: 4,
  /** LOG_ACK: status u32, then entries */
  LOG_ACK_HEAD: 4,
  /** type u32 = 1, id[16], mac[6], pad[2], vnetid u32 */
  LOG_VL2: 32,
  /** type u32 = 2, id[16], ip[16], pad[2], vlan u16, vnetid u32 */
  LOG_VL3: 44,
  /** LOG_RM: count u32, then ids */
  LOG_RM_HEAD: 4,
  LOG_ID: 16,
  /** A status-only payload (BULK_ACK, LOG_RM_ACK, a failed LOG_ACK): status u32. */
  STATUS: 4,
} as const;

export const STATUS = {
  OK: 0,
  FATAL: 1,
  NOTFOUND: 2,
  BADL3TYPE: 3,
  BADBULK: 4,
} as const;

export const L3_TYPE = { IPV4: 1, IPV6: 2 } as const;
export const LOG_TYPE = { VL2: 1, VL3: 2 } as const;

/** The underlay port answers carry: VXLAN's. */
export const VXLAN_PORT = 4789;

/**
 * The largest request payload the server accepts. A client sends at most a
 * LOG_RM of the ids it was given, and LOG_ACKs fit varpd's buffers (about
 * 1 KiB), so 64 KiB is generous; anything larger is a broken or hostile
 * peer, and its connection is closed.
 */
export const MAX_REQUEST_PAYLOAD = 64 * 1024;
