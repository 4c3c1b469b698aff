// Which sessions committed changes end, and that agents never get the
// token deletions: the pure side of revocation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostInfo, LoggedChange } from '../model/changes.js';
import { concerns } from './relevance.js';
import { mergeRevocations, revocationsIn, revokedBy } from './revocation.js';

const at = '2026-01-01T00:00:00.000Z';
const host = (hostId: string): HostInfo => ({
  hostId,
  name: hostId,
  siteId: 's',
  rackId: null,
  underlayIp: '192.0.2.1',
  asn: null,
  state: 'active',
  ipv6Prefix: null,
  svpClient: false,
  svpClientAddresses: [],
});
const tokenDeleted = (tokenId: string, version: number): LoggedChange => ({
  kind: 'token.deleted',
  token: { tokenId, name: tokenId, role: 'agent', tenantId: null, hostId: 'h1' },
  version,
  at,
});
const hostDeleted = (hostId: string, version: number): LoggedChange => ({ kind: 'host.deleted', host: host(hostId), version, at });

test('a batch without deletions revokes nothing', () => {
  assert.equal(revocationsIn([{ kind: 'host.created', host: host('h1'), version: 1, at }]), null);
  assert.equal(revocationsIn([]), null);
});

test('a deleted token ends its sessions, a deleted host its own; the host is the reason when both are', () => {
  const r = revocationsIn([tokenDeleted('t1', 5), hostDeleted('h2', 6), tokenDeleted('t2', 6)]);
  assert.ok(r);
  assert.equal(revokedBy(r, 't1', 'h1'), 'token');
  assert.equal(revokedBy(r, 't9', 'h2'), 'host');
  assert.equal(revokedBy(r, 't2', 'h2'), 'host');
  assert.equal(revokedBy(r, 't9', 'h1'), null, 'other tokens and hosts are untouched');
});

test('only deletions after a version count (a hello that read the store later saw them)', () => {
  const r = revocationsIn([tokenDeleted('t1', 5), hostDeleted('h2', 7)]);
  assert.ok(r);
  assert.equal(revokedBy(r, 't1', 'h1', 4), 'token');
  assert.equal(revokedBy(r, 't1', 'h1', 5), null);
  assert.equal(revokedBy(r, 'tx', 'h2', 6), 'host');
  assert.equal(revokedBy(r, 'tx', 'h2', 7), null);
  const more = revocationsIn([tokenDeleted('t3', 9)]);
  assert.ok(more);
  mergeRevocations(r, more);
  assert.equal(revokedBy(r, 't3', 'h1', 8), 'token');
  assert.equal(revokedBy(r, 't1', 'h1', 4), 'token', 'earlier ones kept');
});

test("no host is sent a token deletion, not even the token's own host", () => {
  const view = { hostId: 'h1', rackId: null, vnis: new Set([100]), nets: new Set(['n1']), vips: new Set(['v1']), vm: true };
  assert.equal(concerns(tokenDeleted('t1', 1), view), false);
});

test('instance records go only to an agent that manages VMs: the host it is on, and the one it left', () => {
  const view = { hostId: 'h1', rackId: null, vnis: new Set<number>(), nets: new Set<string>(), vips: new Set<string>(), vm: true };
  const inst = (hostId: string) => ({ instanceId: 'i1', tenantId: 't', name: 'web1', hostId, state: 'running', profile: null });
  const c = (hostId: string, fromHostId: string | null) => ({ kind: 'instance.updated' as const, instance: inst(hostId), fromHostId, version: 1, at: '' });
  assert.equal(concerns(c('h1', null), view), true);
  assert.equal(concerns(c('h2', 'h1'), view), true, 'moved away: h1 removes it');
  assert.equal(concerns(c('h2', null), view), false);
  assert.equal(concerns(c('h1', null), { ...view, vm: false }), false, 'an agent that asked for no instances');
  assert.equal(concerns({ kind: 'instance.deleted', instance: inst('h1'), version: 2, at: '' }, view), true);
});
