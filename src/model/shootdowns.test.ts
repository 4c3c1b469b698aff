import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PortMapping } from './changes.js';
import { shootdownsFor } from './shootdowns.js';

const port: PortMapping = {
  portId: 'p',
  instanceId: 'i',
  tenantId: 't',
  networkId: 'n',
  networkKind: 'overlay',
  vni: 4096,
  mac: '02:57:46:00:00:01',
  ipv4: '10.0.0.5',
  ipv6: 'fd00::5',
  hostId: 'h2',
  underlayIp: '192.0.2.2',
};

test('the shoot-down table of docs/protocol.md: created VL3, deleted VL2, moved VL2+VL3, IP changed VL3 old and new', () => {
  assert.deepEqual(shootdownsFor({ kind: 'port.created', port }), [
    { kind: 'vl3', vni: 4096, ip: '10.0.0.5' },
    { kind: 'vl3', vni: 4096, ip: 'fd00::5' },
  ]);
  assert.deepEqual(shootdownsFor({ kind: 'port.deleted', port }), [{ kind: 'vl2', vni: 4096, mac: '02:57:46:00:00:01' }]);
  assert.deepEqual(shootdownsFor({ kind: 'port.moved', port, from: { hostId: 'h1', underlayIp: '192.0.2.1' } }), [
    { kind: 'vl2', vni: 4096, mac: '02:57:46:00:00:01' },
    { kind: 'vl3', vni: 4096, ip: '10.0.0.5' },
    { kind: 'vl3', vni: 4096, ip: 'fd00::5' },
  ]);
  assert.deepEqual(shootdownsFor({ kind: 'port.updated', port: { ...port, ipv4: '10.0.0.6' }, before: port }), [
    { kind: 'vl3', vni: 4096, ip: '10.0.0.5' },
    { kind: 'vl3', vni: 4096, ip: '10.0.0.6' },
  ]);
});

test('routed ports and non-port changes produce none', () => {
  assert.deepEqual(shootdownsFor({ kind: 'port.created', port: { ...port, vni: null, networkKind: 'routed' } }), []);
  assert.deepEqual(
    shootdownsFor({
      kind: 'network.deleted',
      network: { networkId: 'n', tenantId: 't', kind: 'overlay', vni: 1, mtu: 1500, subnets: [], arpRate: null, ndRate: null },
    }),
    [],
  );
});
