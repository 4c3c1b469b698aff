import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEADER_SIZE, L3_TYPE, LOG_TYPE, OP, SIZE, STATUS, SVP_PORT, SVP_VERSION, VXLAN_PORT } from './wire.js';

test('every opcode, as docs/protocol.md and varpd define them', () => {
  assert.deepEqual(OP, {
    PING: 1,
    PONG: 2,
    VL2_REQ: 3,
    VL2_ACK: 4,
    VL3_REQ: 5,
    VL3_ACK: 6,
    BULK_REQ: 7,
    BULK_ACK: 8,
    LOG_REQ: 9,
    LOG_ACK: 10,
    LOG_RM: 11,
    LOG_RM_ACK: 12,
    SHOOTDOWN: 13,
  });
});

test('every message size, status and type code', () => {
  assert.equal(SVP_VERSION, 1);
  assert.equal(SVP_PORT, 1296);
  assert.equal(HEADER_SIZE, 16);
  assert.equal(VXLAN_PORT, 4789);
  assert.deepEqual(
    [SIZE.PING, SIZE.VL2_REQ, SIZE.VL2_ACK, SIZE.VL3_REQ, SIZE.VL3_ACK, SIZE.LOG_REQ, SIZE.LOG_RM_ACK, SIZE.LOG_VL2, SIZE.LOG_VL3, SIZE.LOG_ID],
    [0, 12, 20, 24, 28, 20, 4, 32, 44, 16],
  );
  assert.deepEqual(STATUS, { OK: 0, FATAL: 1, NOTFOUND: 2, BADL3TYPE: 3, BADBULK: 4 });
  assert.deepEqual(L3_TYPE, { IPV4: 1, IPV6: 2 });
  assert.deepEqual(LOG_TYPE, { VL2: 1, VL3: 2 });
});
