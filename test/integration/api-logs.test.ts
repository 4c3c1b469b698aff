// The API's logs: a 4xx answer's log line carries its error code, and the
// domain events (instance placed, migrated, deleted; a host's state changed;
// a token created or revoked) are logged at info with the token that did it.
// The agent's logger writes the same pino format.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pinoLog } from '../../src/sys/log.js';
import { ADMIN_SECRET, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

type Line = Record<string, unknown> & { level: number; msg: string };

/** A pino destination that keeps every line, parsed. */
function capture() {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { lines, stream };
}

for (const dialect of DIALECTS) {
  describe(`API logs (${dialect})`, () => {
    let api: TestApi;
    const log = capture();
    before(async () => {
      api = await startTestApi(dialect, {}, { logger: { level: 'info', stream: log.stream } });
      await smallCloud(api, { hosts: 2 });
      await api.admin.post('/v1/networks', { tenant: 'acme', name: 'n1', kind: 'overlay', subnets: ['10.0.0.0/24'] });
    });
    after(async () => {
      await api?.close();
    });
    const events = (name: string) => log.lines.filter((l) => l.event === name);

    test('a 4xx answer logs its error code with the request line', async () => {
      await assert.rejects(api.as('no-such-token-0123456789').get('/v1/sites'));
      await assert.rejects(api.admin.get('/v1/hosts/nope'));
      await assert.rejects(api.admin.post('/v1/sites', { name: 'x', underlayPool: 'not-a-cidr' }));
      const res = await fetch(`${api.url}/v1/sites`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_SECRET}`, 'content-type': 'text/plain' },
        body: 'hi',
      });
      assert.equal(res.status, 415);
      const requests = log.lines.filter((l) => l.msg === 'request' && (l.status as number) >= 400);
      const codes = requests.map((l) => `${l.status} ${l.code}`);
      for (const want of ['401 E_UNAUTHENTICATED', '404 E_NOT_FOUND', '400 E_INVALID_ARG', '415 E_UNSUPPORTED_MEDIA_TYPE'])
        assert.ok(codes.includes(want), `${want} in ${JSON.stringify(codes)}`);
      assert.ok(
        requests.every((l) => typeof l.code === 'string' && /^E_[A-Z_]+$/.test(l.code)),
        'every 4xx line names a code',
      );
    });

    test('domain events are logged at info with the actor', async () => {
      const made = await api.admin.post<{ token: { id: string }; secret: string }>('/v1/tokens', { name: 'ops-bot', role: 'admin' });
      const bot = api.as(made.secret);
      const i = await bot.post<{ id: string; name: string; tenantId: string; hostId: string }>('/v1/instances', {
        tenant: 'acme',
        name: 'vm1',
        site: 'ams1',
        size: 'nano',
        ports: [{ network: 'n1' }],
      });
      const moved = await bot.post<{ hostId: string }>(`/v1/instances/${i.id}/migrate`, {});
      await bot.patch('/v1/hosts/hv1', { state: 'draining' });
      await bot.patch('/v1/hosts/hv1', { state: 'draining' });
      await bot.delete(`/v1/instances/${i.id}`);
      await api.admin.delete(`/v1/tokens/${made.token.id}`);

      const actor = { tokenId: made.token.id, token: 'ops-bot' };
      const created = events('token.created').at(-1);
      assert.equal(created?.tokenId, made.token.id);
      assert.equal((created?.actor as { token?: string } | undefined)?.token, 'bootstrap-admin');
      const placed = events('instance.placed');
      assert.equal(placed.length, 1);
      assert.deepEqual(placed[0]?.actor, actor);
      assert.equal(placed[0]?.instance, i.id);
      assert.equal(placed[0]?.host, i.hostId);
      assert.equal(placed[0]?.level, 30, 'info');
      const migrated = events('instance.migrated');
      assert.equal(migrated[0]?.host, moved.hostId);
      assert.deepEqual(migrated[0]?.actor, actor);
      const state = events('host.state_changed');
      assert.equal(state.length, 1, 'logged when the state changed, not for a patch that left it');
      assert.equal(state[0]?.from, 'active');
      assert.equal(state[0]?.to, 'draining');
      assert.deepEqual(state[0]?.actor, actor);
      const deleted = events('instance.deleted');
      assert.deepEqual(deleted[0]?.actor, actor);
      // What was deleted, by id and where it ran, not only the reference the request gave.
      assert.deepEqual([deleted[0]?.instance, deleted[0]?.name, deleted[0]?.tenant, deleted[0]?.host], [i.id, i.name, i.tenantId, moved.hostId]);
      const revoked = events('token.revoked');
      assert.equal(revoked[0]?.tokenId, made.token.id);
      assert.ok(
        log.lines.every((l) => !JSON.stringify(l).includes(made.secret)),
        "no line holds the token's secret",
      );
    });
  });
}

test("the agent's logger writes the server's pino format, filtered by level", () => {
  const out = capture();
  const log = pinoLog('warn', out.stream);
  log.info('quiet', { a: 1 });
  log.warn('push stream closed; reconnecting', { server: '10.0.0.5' });
  // pino writes synchronously to a plain stream.
  assert.equal(out.lines.length, 1);
  const l = out.lines[0] as Line;
  assert.equal(l.level, 40);
  assert.equal(l.msg, 'push stream closed; reconnecting');
  assert.equal(l.server, '10.0.0.5');
  assert.equal(typeof l.time, 'number');
  assert.equal(typeof l.pid, 'number');
});
