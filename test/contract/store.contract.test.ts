// The Store contract: every test runs on SQLite and on PostgreSQL.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Change } from '../../src/model/changes.js';
import { hostInfo, portMapping } from '../../src/store/records.js';
import type { HostRow, NetworkRow, PortRow, SiteRow } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { DIALECTS, pgAdminUrl, type TestDb, testDb } from '../support/stores.js';

const change = (i: number): Change => ({
  kind: 'host.created',
  host: { hostId: `h${i}`, name: `h${i}`, siteId: 's', rackId: null, underlayIp: `192.0.2.${i % 250}`, asn: null, state: 'active', ipv6Prefix: null },
});
const now = () => new Date().toISOString();
const NO_QUOTAS = { quotaInstances: null, quotaPorts: null, quotaNetworks: null, quotaPublicIpv4: null, quotaVips: null };
const tenantRow = (name: string) => ({ id: `t-${name}`, name, createdAt: now(), ...NO_QUOTAS });

for (const dialect of DIALECTS) {
  describe(`Store contract: ${dialect}`, () => {
    let db: TestDb;
    let store: Store;
    before(async () => {
      db = await testDb(dialect);
      store = await db.open();
    });
    after(async () => {
      await store?.close();
      await db?.drop();
    });

    test('migrations are idempotent: opening again keeps the data', async () => {
      await store.write((tx) => tx.insert('tenants', tenantRow('keep')));
      const again = await db.open();
      try {
        assert.equal((await again.read((tx) => tx.findOne('tenants', { name: 'keep' })))?.id, 't-keep');
      } finally {
        await again.close();
      }
    });

    test('a write that throws keeps nothing it wrote', async () => {
      const head = await store.headVersion();
      await assert.rejects(
        store.write(async (tx) => {
          await tx.insert('tenants', tenantRow('ghost'));
          await tx.appendChange(change(1), now(), null);
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await store.read((tx) => tx.findOne('tenants', { name: 'ghost' })), undefined);
      assert.equal(await store.headVersion(), head);
    });

    test('writes asked for together: one that throws keeps nothing, the others keep everything, versions stay gap-free', async () => {
      const head = await store.headVersion();
      const heard: number[] = [];
      const unsubscribe = store.subscribe((_v, changes) => heard.push(...(changes ?? []).map((c) => c.version)));
      const writes = Array.from({ length: 8 }, (_, i) =>
        store.write(async (tx) => {
          await tx.insert('tenants', tenantRow(`together${i}`));
          const v = await tx.appendChange(change(100 + i), now(), null);
          // A unique violation in the store, and a plain error thrown by the use case.
          if (i === 2) await tx.insert('tenants', { ...tenantRow(`together${i}`), id: 'clash' });
          if (i === 5) throw new Error(`boom ${i}`);
          return v;
        }),
      );
      const results = await Promise.allSettled(writes);
      unsubscribe();
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
      );
      assert.equal(((results[2] as PromiseRejectedResult).reason as { code?: string }).code, 'E_CONFLICT');
      assert.match(((results[5] as PromiseRejectedResult).reason as Error).message, /boom 5/);
      const kept = await store.read((tx) => tx.all('tenants', { name: Array.from({ length: 8 }, (_, i) => `together${i}`) }));
      assert.deepEqual(kept.map((t) => t.name).sort(), ['together0', 'together1', 'together3', 'together4', 'together6', 'together7']);
      // (Which of them commits first is the store's business: PostgreSQL's lock is not first come, first served.)
      const versions = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])).sort((a, b) => a - b);
      assert.deepEqual(
        versions,
        Array.from({ length: 6 }, (_, i) => head + 1 + i),
      );
      const log = await store.changesSince(head, 100);
      assert.deepEqual(
        log.map((c) => c.version),
        versions,
      );
      assert.deepEqual(log.map((c) => (c as Extract<Change, { host: unknown }>).host.hostId).sort(), ['h100', 'h101', 'h103', 'h104', 'h106', 'h107']);
      assert.deepEqual(
        heard.sort((a, b) => a - b),
        versions,
        'subscribers hear exactly the committed changes',
      );
    });

    test('unique violations surface as E_CONFLICT', async () => {
      await store.write((tx) => tx.insert('tenants', tenantRow('dup')));
      await assert.rejects(
        store.write((tx) => tx.insert('tenants', { ...tenantRow('dup'), id: 'other' })),
        (e: { code?: string }) => e.code === 'E_CONFLICT',
      );
    });

    test('allocate hands out numbers in order from a cursor, wraps, and reports exhaustion', async () => {
      const got: bigint[] = [];
      for (let i = 0; i < 4; i++) got.push(await store.write((tx) => tx.allocate('p', 10n, 13n, `o${i}`, 'test range')));
      assert.deepEqual(got, [10n, 11n, 12n, 13n]);
      await assert.rejects(
        store.write((tx) => tx.allocate('p', 10n, 13n, 'o5', 'test range')),
        (e: { code?: string; message: string }) => e.code === 'E_CAPACITY' && /test range: all 4 addresses/.test(e.message),
      );
      await store.write((tx) => tx.release('p', 11n));
      assert.equal(await store.write((tx) => tx.allocate('p', 10n, 13n, 'o6', 'test range')), 11n, 'a freed number is reused');
    });

    test('the cursor skips past freed numbers until the range wraps', async () => {
      const a = await store.write((tx) => tx.allocate('q', 1n, 100n, 'a', 'q'));
      await store.write((tx) => tx.release('q', a));
      const b = await store.write((tx) => tx.allocate('q', 1n, 100n, 'b', 'q'));
      assert.equal(a, 1n);
      assert.equal(b, 2n, 'just-freed 1 is not handed out again at once');
    });

    test('allocation scans past more than one batch of taken numbers', async () => {
      await store.write(async (tx) => {
        for (let i = 0n; i < 1200n; i++) await tx.claim('big', i, 'x', `n ${i}`, 'n');
      });
      assert.equal(await store.write((tx) => tx.allocate('big', 0n, 5000n, 'y', 'big')), 1200n);
    });

    test('claim refuses a taken number with E_CONFLICT naming it', async () => {
      await store.write((tx) => tx.claim('c', 7n, 'a', 'vni 7', 'vni'));
      await assert.rejects(
        store.write((tx) => tx.claim('c', 7n, 'b', 'vni 7', 'vni')),
        (e: { code?: string; message: string; field?: string }) => e.code === 'E_CONFLICT' && e.message === 'vni 7 is already in use' && e.field === 'vni',
      );
    });

    test('concurrent writers get gap-free versions, each transaction contiguous, in commit order', async () => {
      const start = await store.headVersion();
      const writers = 40;
      const per = 3;
      const results = await Promise.all(
        Array.from({ length: writers }, (_, w) =>
          store.write(async (tx) => {
            const vs: number[] = [];
            for (let i = 0; i < per; i++) {
              vs.push(await tx.appendChange(change(w * per + i), now(), null));
              await new Promise((r) => setImmediate(r));
            }
            return vs;
          }),
        ),
      );
      for (const vs of results) assert.deepEqual(vs, [vs[0] as number, (vs[0] as number) + 1, (vs[0] as number) + 2]);
      const log = await store.changesSince(start, 1000);
      assert.deepEqual(
        log.map((c) => c.version),
        Array.from({ length: writers * per }, (_, i) => start + 1 + i),
      );
      assert.equal(await store.headVersion(), start + writers * per);
    });

    test('a second process writing the same database never races on versions or allocations', async () => {
      const startV = await store.headVersion();
      const n = 60;
      const child = execFile(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../support/writer.ts'), db.url, String(n)], {
        encoding: 'utf8',
      });
      const childOut = new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout?.on('data', (d) => (out += d));
        child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`writer exited ${code}`))));
      });
      await new Promise<void>((resolve) => child.stderr?.on('data', (d) => String(d).includes('ready') && resolve()));
      const mine: bigint[] = [];
      for (let i = 0; i < n; i++) {
        mine.push(
          await store.write(async (tx) => {
            const x = await tx.allocate('shared', 1n, 100000n, `parent${i}`, 'shared');
            await tx.appendChange(change(i), now(), null);
            return x;
          }),
        );
        await new Promise((r) => setTimeout(r, 3));
      }
      const theirs = (JSON.parse(await childOut) as string[]).map(BigInt);
      const all = [...mine, ...theirs];
      assert.equal(all.length, 2 * n);
      assert.equal(new Set(all).size, 2 * n, 'no number handed out twice');
      const log = await store.changesSince(startV, 1000);
      assert.deepEqual(
        log.map((c) => c.version),
        Array.from({ length: 2 * n }, (_, i) => startV + 1 + i),
      );
      // The two really ran at once: the log alternates between them somewhere in the middle.
      const owners = log.map((c) => ((c as Extract<Change, { host: unknown }>).host.hostId.startsWith('child') ? 'c' : 'p')).join('');
      assert.match(owners, /p+c+p+|c+p+c+/, `writes interleaved: ${owners}`);
    });

    test('subscribers are woken after commits that append changes, also from another instance', async () => {
      const other = await db.open();
      try {
        const seen: number[] = [];
        const unsub = store.subscribe((v) => seen.push(v));
        await new Promise((r) => setTimeout(r, 200)); // LISTEN connects
        const v = await other.write((tx) => tx.appendChange(change(9), now(), null));
        const local = await store.write((tx) => tx.appendChange(change(10), now(), null));
        const deadline = Date.now() + 3000;
        while (!seen.includes(local) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.ok(seen.includes(local), 'own commit wakes');
        if (dialect === 'postgres') {
          while (!seen.includes(v) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          assert.ok(seen.includes(v), 'another replica commit wakes via NOTIFY');
        }
        unsub();
      } finally {
        await other.close();
      }
    });

    test('changesSince pages in order and round-trips payloads', async () => {
      const start = await store.headVersion();
      await store.write(async (tx) => {
        for (let i = 0; i < 5; i++) await tx.appendChange(change(100 + i), now(), null);
      });
      const first = await store.changesSince(start, 2);
      const rest = await store.changesSince(start + 2, 10);
      assert.deepEqual(
        [...first, ...rest].map((c) => c.version),
        [1, 2, 3, 4, 5].map((i) => start + i),
      );
      assert.equal(first[0]?.kind, 'host.created');
      assert.equal((first[0] as Extract<Change, { host: unknown }>).host.hostId, 'h100');
    });

    test('the change log keeps who made each change; changeLog pages it both ways, followers never see the actor', async () => {
      const start = await store.headVersion();
      const alice = { tokenId: 'tok-alice', name: 'alice' };
      const bob = { tokenId: 'tok-bob', name: 'bob ünïcode' };
      const actors = [alice, null, bob, alice, null];
      await store.write(async (tx) => {
        for (const [i, a] of actors.entries()) await tx.appendChange(change(200 + i), now(), a);
      });
      const v = (i: number) => start + 1 + i;
      const asc = await store.read((tx) => tx.changeLog({ after: start, before: null, order: 'asc', limit: 10 }));
      assert.deepEqual(
        asc.map((c) => [c.version, c.actor]),
        actors.map((a, i) => [v(i), a]),
      );
      assert.equal((asc[0] as Extract<Change, { host: unknown }>).host.hostId, 'h200', 'the payload round-trips beside the actor');
      // Newest first: the newest `limit`, then the next page below the last one seen.
      const desc = await store.read((tx) => tx.changeLog({ after: start, before: null, order: 'desc', limit: 2 }));
      assert.deepEqual(
        desc.map((c) => c.version),
        [v(4), v(3)],
      );
      const below = await store.read((tx) => tx.changeLog({ after: start, before: v(3), order: 'desc', limit: 2 }));
      assert.deepEqual(
        below.map((c) => [c.version, c.actor?.name ?? null]),
        [
          [v(2), 'bob ünïcode'],
          [v(1), null],
        ],
      );
      // A window: strictly between after and before.
      const window = await store.read((tx) => tx.changeLog({ after: v(0), before: v(4), order: 'asc', limit: 10 }));
      assert.deepEqual(
        window.map((c) => c.version),
        [v(1), v(2), v(3)],
      );
      const followed = await store.changesSince(start, 10);
      assert.equal(followed.length, 5);
      for (const c of followed) assert.equal('actor' in c, false, 'the log followers (index, stream to agents) read carries no actor');
    });

    test('migration 0010 leaves the changes logged before it without an actor', async () => {
      const old = await testDb(dialect);
      try {
        const v9 = await old.open('0009-token-salts');
        await v9.write((tx) =>
          tx.insert('changes', { version: 1, kind: 'host.created', entityId: 'h1', vni: null, at: now(), payload: JSON.stringify(change(1)) } as never),
        );
        await v9.close();
        const latest = await old.open();
        try {
          await latest.write((tx) => tx.appendChange(change(2), now(), { tokenId: 'tok-1', name: 'ops' }));
          const log = await latest.read((tx) => tx.changeLog({ after: 0, before: null, order: 'asc', limit: 10 }));
          assert.deepEqual(
            log.map((c) => [c.version, c.actor]),
            [
              [1, null],
              [2, { tokenId: 'tok-1', name: 'ops' }],
            ],
          );
        } finally {
          await latest.close();
        }
      } finally {
        await old.drop();
      }
    });

    test('migration 0002 backfills host usage from the instances already placed', async () => {
      const old = await testDb(dialect);
      try {
        const v1 = await old.open('0001-initial');
        const at = now();
        await v1.write(async (tx) => {
          // An old site row has no vm column yet.
          await tx.insert('sites', { id: 's1', name: 's1', underlayPool: null, ipv4Pools: '[]', ipv6Block: null, createdAt: at } as never);
          // A 0001 tenant row has no quota columns yet.
          await tx.insert('tenants', { id: 't-t1', name: 't1', createdAt: at } as never);
          // A 0001 host row has no usage columns yet.
          const host = { siteId: 's1', rackId: null, asn: null, cpus: 8, memoryMb: 8192, diskGb: 100, state: 'active', ipv6Prefix: null, createdAt: at };
          await tx.insert('hosts', { ...host, id: 'h1', name: 'h1', underlayIp: '192.0.2.1' } as never);
          await tx.insert('hosts', { ...host, id: 'h2', name: 'h2', underlayIp: '192.0.2.2' } as never);
          for (const [id, cpus] of [
            ['i1', 2],
            ['i2', 3],
          ] as const)
            await tx.insert('instances', {
              id,
              tenantId: 't-t1',
              name: id,
              siteId: 's1',
              hostId: 'h1',
              cpus,
              memoryMb: 1024 * cpus,
              diskGb: 10,
              state: 'running',
              createdAt: at,
            } as never);
        });
        await v1.close();
        const latest = await old.open();
        try {
          const h1 = await latest.read((tx) => tx.get('hosts', 'h1'));
          const h2 = await latest.read((tx) => tx.get('hosts', 'h2'));
          assert.deepEqual([Number(h1?.usedCpus), Number(h1?.usedMemoryMb), Number(h1?.usedDiskGb)], [5, 5120, 20]);
          assert.deepEqual([Number(h2?.usedCpus), Number(h2?.usedMemoryMb), Number(h2?.usedDiskGb)], [0, 0, 0]);
        } finally {
          await latest.close();
        }
      } finally {
        await old.drop();
      }
    });

    const hostRow = (id: string, o: Partial<HostRow> = {}): HostRow => ({
      id,
      name: id,
      siteId: 'svp-s',
      rackId: null,
      underlayIp: '192.0.2.77',
      asn: null,
      cpus: 8,
      memoryMb: 8192,
      diskGb: 100,
      state: 'active',
      ipv6Prefix: null,
      createdAt: now(),
      usedCpus: 0,
      usedMemoryMb: 0,
      usedDiskGb: 0,
      svpClient: 0,
      svpClientAddresses: '[]',
      ...o,
    });

    test("a host's svpClient and svpClientAddresses round-trip, update, and reach its HostInfo", async () => {
      await store.write(async (tx) => {
        await tx.insert('sites', { id: 'svp-s', name: 'svp-s', underlayPool: null, ipv4Pools: '[]', ipv6Block: null, vm: null, createdAt: now() });
        await tx.insert('hosts', hostRow('svp-h1', { svpClient: 1, svpClientAddresses: '["198.51.100.7","2001:db8::7"]' }));
      });
      const got = (await store.read((tx) => tx.get('hosts', 'svp-h1'))) as HostRow;
      assert.equal(Number(got.svpClient), 1);
      assert.deepEqual(hostInfo(got).svpClientAddresses, ['198.51.100.7', '2001:db8::7']);
      assert.equal(hostInfo(got).svpClient, true);
      await store.write((tx) => tx.update('hosts', 'svp-h1', { svpClient: 0, svpClientAddresses: '[]' }));
      const off = (await store.read((tx) => tx.get('hosts', 'svp-h1'))) as HostRow;
      assert.deepEqual([hostInfo(off).svpClient, hostInfo(off).svpClientAddresses], [false, []]);
      assert.deepEqual((await store.read((tx) => tx.svpClients())).has('svp-h1'), false, 'svpClients() follows the column');
    });

    test("removeShootdowns removes only the named hosts' rows among the ids", async () => {
      const row = (id: string, hostId: string, idx: number) => ({ id, hostId, version: 1, idx, kind: 'vl2', vni: 7, mac: '02:00:00:00:00:07', ip: null });
      const a = ['aa'.repeat(16), 'ab'.repeat(16)];
      const b = ['ba'.repeat(16)];
      await store.write((tx) => tx.insertMany('shootdowns', [row(a[0] as string, 'rm-a', 0), row(a[1] as string, 'rm-a', 1), row(b[0] as string, 'rm-b', 2)]));
      const left = async () => (await store.read((tx) => tx.all('shootdowns', { hostId: ['rm-a', 'rm-b'] }))).map((r) => r.id).sort();
      await store.removeShootdowns([...a, ...b], []);
      assert.deepEqual(await left(), [...a, ...b].sort(), 'no host: nothing goes');
      await store.removeShootdowns([...a, ...b], ['rm-a', 'rm-x']);
      assert.deepEqual(await left(), b, "only rm-a's");
      await store.removeShootdowns([...a, ...b], ['rm-a']);
      assert.deepEqual(await left(), b, 'idempotent');
      await store.removeShootdowns(b, ['rm-b']);
      assert.deepEqual(await left(), []);
    });

    test('migration 0008 keeps svp_client and gives every host an empty svpClientAddresses list', async () => {
      const old = await testDb(dialect);
      try {
        const v5 = await old.open('0005-peer-max-prefix-action');
        const at = now();
        await v5.write(async (tx) => {
          // An old site row has no vm column yet.
          await tx.insert('sites', { id: 's1', name: 's1', underlayPool: null, ipv4Pools: '[]', ipv6Block: null, createdAt: at } as never);
          const { svpClientAddresses: _gone, ...before } = hostRow('h1', { siteId: 's1', svpClient: 1 });
          await tx.insert('hosts', before as never);
          await tx.insert('hosts', { ...before, id: 'h2', name: 'h2', underlayIp: '192.0.2.78', svpClient: 0 } as never);
        });
        await v5.close();
        const latest = await old.open();
        try {
          const hs = (await latest.read((tx) => tx.all('hosts', {}))).sort((x, y) => x.id.localeCompare(y.id));
          assert.deepEqual(
            hs.map((h) => [h.id, hostInfo(h).svpClient, hostInfo(h).svpClientAddresses]),
            [
              ['h1', true, []],
              ['h2', false, []],
            ],
          );
        } finally {
          await latest.close();
        }
      } finally {
        await old.drop();
      }
    });

    test('migration 0007 gives existing tenants no quotas of their own; the quota columns round-trip', async () => {
      const old = await testDb(dialect);
      try {
        const v5 = await old.open('0005-peer-max-prefix-action');
        await v5.write((tx) => tx.insert('tenants', { id: 't-old', name: 'old', createdAt: now() } as never));
        await v5.close();
        const latest = await old.open();
        try {
          const t = await latest.read((tx) => tx.get('tenants', 't-old'));
          assert.deepEqual({ ...t, createdAt: undefined }, { id: 't-old', name: 'old', createdAt: undefined, ...NO_QUOTAS });
          await latest.write((tx) => tx.update('tenants', 't-old', { quotaPublicIpv4: 7, quotaInstances: 0 }));
          const u = await latest.read((tx) => tx.get('tenants', 't-old'));
          assert.deepEqual([u?.quotaPublicIpv4, u?.quotaInstances, u?.quotaPorts], [7, 0, null]);
        } finally {
          await latest.close();
        }
      } finally {
        await old.drop();
      }
    });

    test("tenantUsage counts a tenant's rows; public IPv4 is its routed ports' IPv4 and its IPv4 VIPs", async () => {
      const at = now();
      await store.write(async (tx) => {
        await tx.insert('sites', { id: 'qu-s', name: 'qu-s', underlayPool: null, ipv4Pools: '[]', ipv6Block: null, vm: null, createdAt: at });
        for (const t of ['qu', 'qu-other']) await tx.insert('tenants', tenantRow(t));
        const host = { siteId: 'qu-s', rackId: null, asn: null, cpus: 8, memoryMb: 8192, diskGb: 100, state: 'active', ipv6Prefix: null, createdAt: at };
        await tx.insert('hosts', {
          ...host,
          id: 'qu-h',
          name: 'qu-h',
          underlayIp: '192.0.2.177',
          usedCpus: 0,
          usedMemoryMb: 0,
          usedDiskGb: 0,
          svpClient: 0,
          svpClientAddresses: '[]',
        });
        const net = { siteId: null, mtu: 1500, arpRate: null, ndRate: null, subnets: '[]', createdAt: at };
        await tx.insert('networks', { ...net, id: 'qu-o', tenantId: 't-qu', name: 'o', kind: 'overlay', vni: 7001 });
        await tx.insert('networks', { ...net, id: 'qu-r', tenantId: 't-qu', name: 'r', kind: 'routed', vni: null, siteId: 'qu-s' });
        await tx.insert('networks', { ...net, id: 'qu-r2', tenantId: 't-qu-other', name: 'r', kind: 'routed', vni: null, siteId: 'qu-s' });
        const inst = { siteId: 'qu-s', hostId: 'qu-h', cpus: 1, memoryMb: 512, diskGb: 1, state: 'running', image: null, createdAt: at };
        await tx.insert('instances', { ...inst, id: 'qu-i', tenantId: 't-qu', name: 'i' });
        await tx.insert('instances', { ...inst, id: 'qu-i2', tenantId: 't-qu-other', name: 'i' });
        const ports: [string, string, string, string | null, string | null][] = [
          ['qu-p1', 'qu-i', 'qu-o', '10.0.0.2', 'fd00::2'],
          ['qu-p2', 'qu-i', 'qu-r', '203.0.113.2', '2001:db8::2'],
          ['qu-p3', 'qu-i', 'qu-r', null, '2001:db8::3'],
          ['qu-p4', 'qu-i2', 'qu-r2', '203.0.113.4', null],
        ];
        for (const [id, instanceId, networkId, ipv4, ipv6] of ports)
          await tx.insert('ports', {
            id,
            instanceId,
            networkId,
            tenantId: instanceId === 'qu-i' ? 't-qu' : 't-qu-other',
            mac: `02:57:46:00:77:0${id.slice(-1)}`,
            ipv4,
            ipv6,
            createdAt: at,
          });
        for (const [id, address] of [
          ['qu-v4', '203.0.113.10'],
          ['qu-v6', '2001:db8::10'],
        ] as const)
          await tx.insert('vips', { id, tenantId: 't-qu', name: id, siteId: 'qu-s', address, healthCheck: '{}', createdAt: at });
      });
      const usage = await store.read((tx) => tx.tenantUsage('t-qu', ['instances', 'ports', 'networks', 'publicIpv4', 'vips']));
      assert.deepEqual(usage, { instances: 1, ports: 3, networks: 2, publicIpv4: 2, vips: 2 });
      assert.deepEqual(await store.read((tx) => tx.tenantUsage('t-qu-other', ['publicIpv4', 'vips'])), { publicIpv4: 1, vips: 0 });
      assert.deepEqual(await store.read((tx) => tx.tenantUsage('t-nobody', ['instances'])), { instances: 0 });
    });

    test("the store's port join and portMapping() build the same record", async () => {
      const at = now();
      const site: SiteRow = { id: 'pm-s', name: 'pm-s', underlayPool: null, ipv4Pools: '[]', ipv6Block: null, vm: null, createdAt: at };
      const host: HostRow = {
        id: 'pm-h',
        name: 'pm-h',
        siteId: site.id,
        rackId: null,
        underlayIp: '192.0.2.9',
        asn: null,
        cpus: 8,
        memoryMb: 8192,
        diskGb: 100,
        state: 'active',
        ipv6Prefix: null,
        createdAt: at,
        usedCpus: 0,
        usedMemoryMb: 0,
        usedDiskGb: 0,
        svpClient: 0,
        svpClientAddresses: '[]',
      };
      const net: NetworkRow = {
        id: 'pm-n',
        tenantId: 't-pm',
        name: 'pm-n',
        kind: 'overlay',
        vni: 4242,
        subnets: '[]',
        siteId: null,
        mtu: 1450,
        arpRate: null,
        ndRate: null,
        createdAt: at,
      };
      const port: PortRow = {
        id: 'pm-p',
        instanceId: 'pm-i',
        networkId: net.id,
        tenantId: 't-pm',
        mac: '02:57:46:00:00:09',
        ipv4: '10.9.0.2',
        ipv6: null,
        createdAt: at,
      };
      const mapped = await store.write(async (tx) => {
        await tx.insert('sites', site);
        await tx.insert('tenants', tenantRow('pm'));
        await tx.insert('hosts', host);
        await tx.insert('networks', net);
        const inst = {
          id: 'pm-i',
          tenantId: 't-pm',
          name: 'pm-i',
          siteId: site.id,
          hostId: host.id,
          cpus: 1,
          memoryMb: 512,
          diskGb: 1,
          state: 'running',
          image: null,
          createdAt: at,
        };
        await tx.insert('instances', inst);
        await tx.insert('ports', port);
        return tx.portMappingsFor(host.id, []);
      });
      // Same fields in the same order: the change log stores these as JSON.
      assert.equal(JSON.stringify(mapped), JSON.stringify([portMapping(port, net, host)]));
    });

    if (dialect === 'sqlite')
      test('writes committed together: when SQLite aborts the whole transaction, the others run again and are kept', async () => {
        // RAISE(ROLLBACK) in a trigger ends the transaction itself, as an I/O error or a full disk would.
        const path = db.url.slice('sqlite:'.length);
        const side = new Database(path);
        side.exec(`create trigger abort_all before insert on tenants when new.name = 'abort-all' begin select raise(rollback, 'aborted by trigger'); end`);
        side.close();
        try {
          const results = await Promise.allSettled(
            ['kept-before', 'abort-all', 'kept-after'].map((name) =>
              store.write(async (tx) => {
                await tx.insert('tenants', tenantRow(name));
                return name;
              }),
            ),
          );
          assert.deepEqual(
            results.map((r) => r.status),
            ['fulfilled', 'rejected', 'fulfilled'],
          );
          assert.match(((results[1] as PromiseRejectedResult).reason as Error).message, /aborted by trigger/);
          const kept = await store.read((tx) => tx.all('tenants', { name: ['kept-before', 'abort-all', 'kept-after'] }));
          assert.deepEqual(kept.map((t) => t.name).sort(), ['kept-after', 'kept-before']);
        } finally {
          const again = new Database(path);
          again.exec('drop trigger abort_all');
          again.close();
        }
      });

    if (dialect === 'postgres')
      test('connections PostgreSQL terminates are replaced, and do not crash the process', async () => {
        await store.headVersion();
        const admin = new pg.Client({ connectionString: pgAdminUrl() });
        await admin.connect();
        try {
          const name = new URL(db.url).pathname.slice(1);
          const r = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name]);
          assert.ok(r.rowCount && r.rowCount > 0, 'there were connections to terminate');
        } finally {
          await admin.end();
        }
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(typeof (await store.headVersion()), 'number');
        await store.write((tx) => tx.insert('tenants', tenantRow('after-terminate')));
      });

    test('committed data survives close and reopen', async () => {
      const head = await store.headVersion();
      await store.close();
      store = await db.open();
      assert.equal(await store.headVersion(), head);
    });
  });
}
