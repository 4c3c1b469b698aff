import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeftError } from '../model/errors.js';
import { decodeAgentMessage, decodeServerMessage } from './validate.js';

const port = {
  portId: 'p1',
  instanceId: 'i1',
  tenantId: 't',
  networkId: 'n',
  networkKind: 'overlay',
  vni: 7,
  mac: '02:00:00:00:00:01',
  ipv4: '10.0.0.1',
  ipv6: null,
  hostId: 'h2',
  underlayIp: '192.0.2.2',
};
const host = { hostId: 'h1', name: 'h1', siteId: 's', rackId: null, underlayIp: '192.0.2.1', asn: null, state: 'active', ipv6Prefix: null };
const good = [
  { t: 'welcome', v: 1, hostId: 'h1', mode: 'deltas', head: 3 },
  { t: 'snapshot.begin', version: 3 },
  { t: 'snapshot.ports', ports: [port, { ...port, portId: 'p2', vni: null, networkKind: 'routed' }] },
  { t: 'snapshot.end', version: 3, state: { host, networks: [{ networkId: 'n' }], vnis: [7], vips: [], peers: [] } },
  {
    t: 'delta',
    version: 5,
    changes: [
      { kind: 'port.created', port, version: 4, at: 'x' },
      { kind: 'port.moved', port, from: { hostId: 'h3', underlayIp: '192.0.2.3' }, version: 5, at: 'x' },
      { kind: 'host.updated', host, before: host, version: 5, at: 'x' },
      { kind: 'vip.created', vip: { vipId: 'v', backends: [{ portId: 'p1', hostId: 'h1' }] }, version: 5, at: 'x' },
    ],
    vnis: [7],
  },
  { t: 'ping' },
  { t: 'error', code: 'E_FORBIDDEN', message: 'no' },
];

test('well-formed server messages pass unchanged; unknown types are null (ignored)', () => {
  for (const m of good) assert.equal(decodeServerMessage(m), m);
  assert.equal(decodeServerMessage({ t: 'from.a.newer.server', x: 1 }), null);
});

/** Each malformed message and the field its error must name. */
const badServer: [unknown, string, string][] = [
  [5, 'message', '5'],
  [null, 'message', 'null'],
  [{ version: 1 }, 'message.t', '(missing)'],
  [{ t: 'welcome', v: 1, hostId: 'h1', mode: 'all', head: 0 }, 'welcome.mode', '"all"'],
  [{ t: 'snapshot.begin', version: -1 }, 'snapshot.begin.version', '-1'],
  [{ t: 'snapshot.ports', ports: {} }, 'snapshot.ports.ports', '{}'],
  [{ t: 'snapshot.ports', ports: [port, { ...port, mac: 7 }] }, 'snapshot.ports.ports[1].mac', '7'],
  [{ t: 'snapshot.ports', ports: [port, null] }, 'snapshot.ports.ports[1]', 'null'],
  [{ t: 'snapshot.end', version: 1, state: { host, networks: [], vnis: ['7'], vips: [], peers: [] } }, 'snapshot.end.state.vnis[0]', '"7"'],
  [{ t: 'snapshot.end', version: 1 }, 'snapshot.end.state', '(missing)'],
  [{ t: 'delta', version: '5', changes: [], vnis: [] }, 'delta.version', '"5"'],
  [{ t: 'delta', version: 5, changes: [{ kind: 'port.created', port: { ...port, vni: 1.5 }, version: 5 }], vnis: [] }, 'delta.changes[0].port.vni', '1.5'],
  [{ t: 'delta', version: 5, changes: [{ kind: 'port.exploded', version: 5 }], vnis: [] }, 'delta.changes[0].kind', '"port.exploded"'],
  [{ t: 'delta', version: 5, changes: [{ kind: 'port.moved', port, version: 5 }], vnis: [] }, 'delta.changes[0].from', '(missing)'],
  [{ t: 'delta', version: 5, changes: [] }, 'delta.vnis', '(missing)'],
  [{ t: 'error', code: 3, message: 'x' }, 'error.code', '3'],
];

test('a malformed server message is an E_INVALID_ARG naming the field and the value', () => {
  for (const [m, field, shown] of badServer) {
    assert.throws(
      () => decodeServerMessage(m),
      (e: WeftError) => e instanceof WeftError && e.code === 'E_INVALID_ARG' && e.field === field && e.message.startsWith(`invalid ${field} ${shown}: `),
      `${JSON.stringify(m)} should name ${field}`,
    );
  }
});

test('agent messages: checked by type; a hello of another version is left for the server to refuse', () => {
  const hello = { t: 'hello', v: 1, host: 'h1', token: 'tok', version: 0, vnis: [7] };
  for (const m of [hello, { t: 'ack', version: 4 }, { t: 'routing', routing: { birdUp: 'whatever' } }, { t: 'pong' }])
    assert.equal(decodeAgentMessage(m, 1), m);
  assert.equal(decodeAgentMessage({ t: 'hello', v: 2, hosts: ['h1'] }, 1)?.t, 'hello');
  assert.equal(decodeAgentMessage({ t: 'telemetry' }, 1), null);
  const bad: [unknown, string][] = [
    [[], 'message'],
    [{ t: 'hello', v: 1, host: 'h1', version: 0, vnis: [] }, 'hello.token'],
    [{ ...hello, vnis: [7, -1] }, 'hello.vnis[1]'],
    [{ ...hello, v: '1' }, 'hello.v'],
    [{ t: 'ack', version: 'seven' }, 'ack.version'],
    [{ t: 'routing', routing: 'up' }, 'routing.routing'],
  ];
  for (const [m, field] of bad)
    assert.throws(
      () => decodeAgentMessage(m, 1),
      (e: WeftError) => e instanceof WeftError && e.code === 'E_INVALID_ARG' && e.field === field,
      `${JSON.stringify(m)} should name ${field}`,
    );
});
