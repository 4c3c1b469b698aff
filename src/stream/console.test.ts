import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoggedChange } from '../model/changes.js';
import { WeftError } from '../model/errors.js';
import { ConsoleRelay, type ConsoleSink } from './console.js';

const sink = () => {
  const closed: string[] = [];
  const s: ConsoleSink & { closed: string[] } = { closed, data: () => {}, close: (r) => closed.push(r) };
  return s;
};
const inst = (hostId: string) => ({ instanceId: 'i1', tenantId: 't', name: 'web1', hostId, state: 'running', profile: null });

test('one console session per instance; a forced one ends the other, telling its sink', () => {
  const r = new ConsoleRelay();
  const a = sink();
  const { session } = r.open({ instanceId: 'i1', hostId: 'h1', tokenId: 'tok', force: false, sink: a });
  assert.match(session.id, /^[0-9a-f]{16}$/);
  assert.throws(
    () => r.open({ instanceId: 'i1', hostId: 'h1', tokenId: 'tok', force: false, sink: sink() }),
    (e: unknown) => e instanceof WeftError && e.code === 'E_CONFLICT' && /--force/.test(e.message),
  );
  const b = sink();
  const { replaced } = r.open({ instanceId: 'i1', hostId: 'h1', tokenId: 'tok', force: true, sink: b });
  assert.equal(replaced?.id, session.id);
  assert.deepEqual(a.closed, ['taken over by another console session (--force)']);
  assert.equal(r.get(session.id), undefined);
  // Another instance is another session.
  r.open({ instanceId: 'i2', hostId: 'h1', tokenId: 'tok', force: false, sink: sink() });
  assert.equal(r.ofHost('h1').length, 2);
});

test('a deleted token, a deleted instance and a move off the host end the sessions they concern', () => {
  const r = new ConsoleRelay();
  const open = (instanceId: string, tokenId: string) => r.open({ instanceId, hostId: 'h1', tokenId, force: false, sink: sink() }).session;
  const s1 = open('i1', 'tok1');
  const change = (c: object) => ({ ...c, version: 1, at: '' }) as LoggedChange;
  assert.deepEqual(r.ended([change({ kind: 'instance.updated', instance: inst('h1'), fromHostId: null })]), [], 'still on its host');
  assert.deepEqual(
    r.ended([change({ kind: 'instance.updated', instance: inst('h2'), fromHostId: 'h1' })]).map((x) => [x.session.id, x.reason]),
    [[s1.id, 'instance moved to another host']],
  );
  assert.deepEqual(
    r.ended([change({ kind: 'token.deleted', token: { tokenId: 'tok1', name: 'x', role: 'tenant', tenantId: 't', hostId: null } })]).map((x) => x.reason),
    ['token revoked'],
  );
  assert.deepEqual(
    r.ended([change({ kind: 'instance.deleted', instance: inst('h1') })]).map((x) => x.reason),
    ['instance deleted'],
  );
  assert.equal(r.end('nosuch', 'x'), undefined);
});
