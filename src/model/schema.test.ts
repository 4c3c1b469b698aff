// The enumerations the schemas check requests against are the value lists
// of model/types.ts, and the types derived from the schemas keep their shape.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as S from './schema.js';
import { HEALTH_CHECK_TYPES, HOST_STATES, IMPORT_POLICIES, INSTANCE_STATES, MAX_PREFIX_ACTIONS, NETWORK_KINDS, ROLES } from './types.js';

test('each enumeration schema is a union of exactly its list, in order', () => {
  const pairs = [
    [S.HostState, HOST_STATES],
    [S.NetworkKind, NETWORK_KINDS],
    [S.InstanceState, INSTANCE_STATES],
    [S.Role, ROLES],
    [S.ImportPolicy, IMPORT_POLICIES],
    [S.MaxPrefixAction, MAX_PREFIX_ACTIONS],
    [S.HealthCheckType, HEALTH_CHECK_TYPES],
  ] as const;
  for (const [schema, values] of pairs) assert.deepEqual(JSON.parse(JSON.stringify(schema)), { anyOf: values.map((v) => ({ const: v, type: 'string' })) });
});

test('enumerated entity fields are shown as plain strings, resources by reference', () => {
  assert.deepEqual(JSON.parse(JSON.stringify(S.Host.properties.state)), { type: 'string' });
  assert.deepEqual(JSON.parse(JSON.stringify(S.Host.properties.capacity)), { $ref: 'Resources' });
  assert.deepEqual(JSON.parse(JSON.stringify(S.Peer.properties.maxPrefixAction)), { type: 'string' });
});

test("the change log's records take the entity's fields where they share them", () => {
  assert.deepEqual(Object.keys(S.HostInfo.properties), [
    'hostId',
    'name',
    'siteId',
    'rackId',
    'underlayIp',
    'asn',
    'state',
    'ipv6Prefix',
    'svpClient',
    'svpClientAddresses',
  ]);
  assert.equal(S.HostInfo.properties.underlayIp, S.Host.properties.underlayIp);
  assert.deepEqual(Object.keys(S.NetworkInfo.properties), ['networkId', 'tenantId', 'kind', 'vni', 'mtu', 'subnets', 'arpRate', 'ndRate']);
  assert.deepEqual(Object.keys(S.PeerInfo.properties), [
    'peerId',
    'hostId',
    'rackId',
    'neighbor',
    'remoteAsn',
    'importPolicy',
    'maxPrefix',
    'maxPrefixAction',
    'bfd',
    'multiprotocol',
  ]);
});
