// A store restored from a backup, on both stores: an online SQLite backup
// (`weft backup`, while the server writes) or pg_dump, restored under a new
// server while agents keep their state. An agent that applied changes the
// restored log lost is ahead of it, or (once the server wrote on) holds a
// version that names another change there: either way it takes a snapshot,
// and its state is the restored server's, the lost changes' entries gone.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { AgentState } from '../../src/agent/state/agent-state.js';
import { ApiClient } from '../../src/cli/client.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { StreamClient } from '../../src/stream/client.js';
import { desiredState } from '../../src/stream/desired.js';
import { until } from '../../src/sys/until.js';
import { DIALECTS, pgAdminUrl, type TestDb, testDb } from '../support/stores.js';

const run = promisify(execFile);
const TOKEN = 'restore-test-admin-token-0123456789';
const WEFT = join(import.meta.dirname, '../../bin/weft');

for (const dialect of DIALECTS) {
  describe(`restore from a backup: ${dialect}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-restore-'));
    const backup = join(dir, dialect === 'sqlite' ? 'weft-backup.db' : 'weft.dump');
    let db: TestDb;
    let server: RunningServer | null = null;
    let api: ApiClient;
    let streamPort = 0;
    const clients: StreamClient[] = [];

    const start = async () => {
      server = await startServer({
        db: db.url,
        api: '127.0.0.1:0',
        svp: 'off',
        stream: `127.0.0.1:${streamPort}`,
        placement: 'spread',
        cpuOvercommit: 1,
        adminToken: TOKEN,
        logLevel: 'silent',
      });
      streamPort = Number((server.streamAddress as string).split(':').at(-1));
      api = new ApiClient(server.apiUrl, TOKEN);
    };
    const running = () => server as RunningServer;

    /** An agent of `host` from where it stands: its state, version and fingerprint; `welcomes` records each welcome's reason. */
    function agent(host: string, state: AgentState, from?: { version: number; fingerprint: string | null }) {
      const welcomes: (string | undefined)[] = [];
      const c = new StreamClient({
        host: '127.0.0.1',
        port: streamPort,
        hostRef: host,
        token: TOKEN,
        version: from?.version,
        fingerprint: from?.fingerprint,
        vnis: from ? [...state.vnis] : undefined,
        handler: { snapshot: (v, s) => state.snapshot(v, s), delta: (v, ch, vn) => state.delta(v, ch, vn) },
        onWelcome: (_id, mode, reason) => welcomes.push(mode === 'snapshot' ? (reason ?? 'snapshot') : 'deltas'),
      });
      clients.push(c);
      c.start();
      return { c, welcomes };
    }

    /** The agent's ports are what the server's store says its host needs now. */
    async function matches(state: AgentState): Promise<boolean> {
      const { state: want } = await desiredState(running().store, state.hostId);
      const got = [...state.ports.values()].sort((a, b) => a.portId.localeCompare(b.portId));
      return JSON.stringify(got) === JSON.stringify(want.ports) && JSON.stringify([...state.vnis].sort()) === JSON.stringify(want.vnis);
    }
    const portNamed = (state: AgentState, instanceId: string) => [...state.ports.values()].some((p) => p.instanceId === instanceId);
    const create = async (name: string, host: string) =>
      (await api.post<{ id: string }>('/v1/instances', { tenant: 'acme', name, site: 'ams1', host, ports: [{ network: 'a' }] })).id;

    async function takeBackup(): Promise<number> {
      if (dialect === 'postgres') {
        await run('pg_dump', ['--format=custom', '--file', backup, '--dbname', db.url]);
        return 0;
      }
      // Online: the server writes while `weft backup` copies.
      const writes = (async () => {
        for (let i = 0; i < 5; i++) await create(`during${i}`, 'hv2');
      })();
      const { stdout } = await run(WEFT, ['-o', 'json', 'backup', '--db', db.url, '--to', backup]);
      await writes;
      const r = JSON.parse(stdout) as { version: number; bytes: number; to: string };
      assert.equal(r.to, backup);
      assert.equal(statSync(backup).mode & 0o777, 0o600, 'the backup holds token hashes: mode 0600');
      assert.ok(r.version > 0 && r.bytes === statSync(backup).size, JSON.stringify(r));
      return r.version;
    }

    /** Replaces the store with the backup, as docs/operations.md says to, the server stopped. */
    async function restore(): Promise<void> {
      if (dialect === 'sqlite') {
        const path = db.url.slice('sqlite:'.length);
        for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
        copyFileSync(backup, path);
        return;
      }
      const name = new URL(db.url).pathname.slice(1);
      const c = new pg.Client({ connectionString: pgAdminUrl() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE ${name} WITH (FORCE)`);
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      await run('pg_restore', ['--no-owner', '--single-transaction', '--exit-on-error', '--dbname', db.url, backup]);
    }

    before(async () => {
      db = await testDb(dialect);
      await start();
      await api.post('/v1/sites', { name: 'ams1', underlayPool: '192.0.2.0/24' });
      await api.post('/v1/racks', { site: 'ams1', name: 'r1' });
      for (const h of ['hv1', 'hv2', 'hv3'])
        await api.post('/v1/hosts', { name: h, site: 'ams1', rack: 'r1', capacity: { cpus: 64, memoryMb: 1 << 20, diskGb: 10000 } });
      await api.post('/v1/tenants', { name: 'acme' });
      await api.post('/v1/networks', { tenant: 'acme', name: 'a', kind: 'overlay', subnets: ['10.0.0.0/24'] });
      await create('a1', 'hv1');
      await create('a3', 'hv3');
    });
    after(async () => {
      for (const c of clients) c.stop();
      await server?.close();
      await db?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('agents that applied lost changes take a snapshot (ahead, diverged) and end with the restored state', async (t) => {
      const hv1 = new AgentState((await api.get<{ id: string }>('/v1/hosts/hv1')).id);
      const hv3 = new AgentState((await api.get<{ id: string }>('/v1/hosts/hv3')).id);
      const a1 = agent('hv1', hv1);
      const a3 = agent('hv3', hv3);
      await until('both agents follow', async () => hv1.version > 0 && hv3.version > 0 && (await matches(hv1)) && (await matches(hv3)));

      const backedUp = await takeBackup();
      // Written after the backup: what the restore loses.
      const lost = await create('lost', 'hv2');
      await until(
        'both hold the lost port, acknowledged',
        async () =>
          portNamed(hv1, lost) &&
          portNamed(hv3, lost) &&
          a1.c.version === hv1.version &&
          a3.c.version === hv3.version &&
          (await matches(hv1)) &&
          (await matches(hv3)),
      );
      const before = { hv1: { version: a1.c.version, fingerprint: a1.c.fingerprint }, hv3: { version: a3.c.version, fingerprint: a3.c.fingerprint } };
      assert.ok(before.hv1.fingerprint && before.hv3.fingerprint, 'the server sent a fingerprint with each version');
      assert.ok(before.hv1.version > backedUp, `the agent applied past the backup (${before.hv1.version} > ${backedUp})`);
      a1.c.stop();
      a3.c.stop();
      const lostHead = await running().store.headVersion();

      await running().close();
      server = null;
      await restore();
      await start();
      const restoredHead = await running().store.headVersion();
      t.diagnostic(`head ${lostHead} before the restore, ${restoredHead} after; the agents at ${before.hv1.version} and ${before.hv3.version}`);
      assert.ok(restoredHead < before.hv1.version, 'the restored log is behind the agents');
      assert.equal(
        (await api.get<{ items: { name: string }[] }>('/v1/instances?tenant=acme')).items.some((i) => i.name === 'lost'),
        false,
      );

      // hv1 comes back before the restored server wrote anything: it is ahead of the log.
      const b1 = agent('hv1', hv1, before.hv1);
      await until('hv1 has the restored state', async () => b1.welcomes.length > 0 && !portNamed(hv1, lost) && (await matches(hv1)));
      assert.deepEqual(b1.welcomes, ['ahead']);

      // The restored server writes on, past the agents' versions: the same numbers, other changes.
      const fresh: string[] = [];
      while ((await running().store.headVersion()) <= before.hv3.version) fresh.push(await create(`fresh${fresh.length}`, 'hv2'));
      await until('hv1 follows the new changes with deltas', async () => fresh.every((id) => portNamed(hv1, id)) && (await matches(hv1)));

      // hv3 comes back at a version the restored log has, naming another change there: diverged.
      const b3 = agent('hv3', hv3, before.hv3);
      await until('hv3 has the restored state', async () => b3.welcomes.length > 0 && !portNamed(hv3, lost) && (await matches(hv3)));
      assert.deepEqual(b3.welcomes, ['diverged']);
      assert.ok(
        fresh.every((id) => portNamed(hv3, id)),
        'the ports written after the restore are there',
      );

      const metrics = await (await fetch(`${running().apiUrl}/metrics`)).text();
      for (const reason of ['ahead', 'diverged']) assert.match(metrics, new RegExp(`^weft_stream_snapshots_total\\{reason="${reason}"\\} 1$`, 'm'));
    });

    if (dialect === 'sqlite')
      test('weft backup refuses what it cannot do, naming the flag, and leaves nothing behind', async () => {
        const fail = async (args: string[]) => {
          const r = await run(WEFT, ['backup', ...args]).then(
            () => assert.fail(`weft backup ${args.join(' ')} succeeded`),
            (e: { code: number; stderr: string }) => e,
          );
          assert.equal(r.code, 1);
          return r.stderr;
        };
        writeFileSync(join(dir, 'taken'), 'x');
        assert.match(await fail(['--db', db.url, '--to', join(dir, 'taken')]), /invalid --to ".*taken": exists already/);
        assert.match(await fail(['--db', db.url, '--to', join(dir, 'no/such/dir.db')]), /invalid --to .*: its directory .* does not exist/);
        assert.match(
          await fail(['--db', `sqlite:${join(dir, 'nosuch.db')}`, '--to', join(dir, 'b.db')]),
          /invalid --db "sqlite:.*nosuch\.db": no such database file/,
        );
        assert.match(
          await fail(['--db', pgAdminUrl(), '--to', join(dir, 'b.db')]),
          /invalid --db: weft backup copies SQLite stores; back up PostgreSQL with pg_dump/,
        );
        assert.equal(existsSync(join(dir, 'b.db')), false);
      });
  });
}
