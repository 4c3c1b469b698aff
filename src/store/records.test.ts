// The records built from rows are what their schemas (model/schema.ts) say:
// every field, no other, of the right type.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import * as S from '../model/schema.js';
import { hostInfo, networkInfo, peerInfo, portMapping } from './records.js';
import type { HostRow, NetworkRow, PeerRow, PortRow } from './schema.js';

const at = '2026-01-01T00:00:00.000Z';
const host: HostRow = {
  id: 'h1',
  name: 'h1',
  siteId: 's1',
  rackId: 'r1',
  underlayIp: '192.0.2.1',
  asn: 65001,
  cpus: 8,
  memoryMb: 8192,
  diskGb: 100,
  state: 'active',
  ipv6Prefix: '2001:db8:0:1::/64',
  createdAt: at,
  usedCpus: 0,
  usedMemoryMb: 0,
  usedDiskGb: 0,
  svpClient: 1,
  svpClientAddresses: '["198.51.100.7","2001:db8::7"]',
};
const net: NetworkRow = {
  id: 'n1',
  tenantId: 't1',
  name: 'n1',
  kind: 'overlay',
  vni: 100,
  subnets: '["10.0.0.0/24"]',
  siteId: null,
  mtu: 1450,
  arpRate: 10,
  ndRate: null,
  createdAt: at,
};
const port: PortRow = { id: 'p1', instanceId: 'i1', networkId: 'n1', tenantId: 't1', mac: '02:57:46:00:00:01', ipv4: '10.0.0.2', ipv6: null, createdAt: at };
const peer: PeerRow = {
  id: 'pe1',
  hostId: 'h1',
  rackId: null,
  neighbor: '192.0.2.254',
  remoteAsn: 65000,
  importPolicy: 'default',
  maxPrefix: 100,
  maxPrefixAction: 'restart',
  bfd: 1,
  multiprotocol: 0,
  description: null,
  createdAt: at,
};

function matches(schema: TObject, value: object) {
  assert.deepEqual(Object.keys(value), Object.keys(schema.properties), 'the schema fields, in order');
  assert.ok(Value.Check(schema, value), JSON.stringify([...Value.Errors(schema, value)].map((e) => `${e.path}: ${e.message}`)));
}

test('portMapping, hostInfo, networkInfo and peerInfo build what their schemas say', () => {
  matches(S.PortMapping, portMapping(port, net, host));
  matches(S.HostInfo, hostInfo(host));
  matches(S.NetworkInfo, networkInfo(net));
  matches(S.PeerInfo, peerInfo(peer));
});

test('portMapping takes each field from its row', () => {
  assert.deepEqual(portMapping(port, net, host), {
    portId: 'p1',
    instanceId: 'i1',
    tenantId: 't1',
    networkId: 'n1',
    networkKind: 'overlay',
    vni: 100,
    mac: '02:57:46:00:00:01',
    ipv4: '10.0.0.2',
    ipv6: null,
    hostId: 'h1',
    underlayIp: '192.0.2.1',
  });
});
