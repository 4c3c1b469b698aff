// Secrets at rest, against real `weft server` processes and the real CLI:
// the SQLite file and its -wal/-shm are 0600 (a world-readable one is
// tightened); no row keeps a secret or its plain SHA-256, only a salted
// hash, and a dump of the tokens table gives nothing to check a guess
// against; a token made before the salts (migration 0009) still works;
// admin secrets need 128 bits; an expired token is refused on the API and
// on the push stream, saying it expired; lastUsedAt shows a use and is not
// written per request; the CLI refuses a token file others may read and
// writes a new token's secret to a new 0600 file.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '../../src/cli/client.js';
import { createCtx } from '../../src/core/context.js';
import { createToken, ensureAdminToken, sha256Hex } from '../../src/core/tokens.js';
import { type ServerProcess, startServerProcess, WEFT_BIN } from '../../src/lab/server-process.js';
import type { Token } from '../../src/model/types.js';
import type { TokenRow } from '../../src/store/schema.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { encode, MessageReader, type ServerMessage, STREAM_VERSION } from '../../src/stream/protocol.js';
import { DIALECTS, type TestDb, testDb } from '../support/stores.js';

const ADMIN = 'secrets-test-admin-token-0123456789';
const mode = (f: string) => statSync(f).mode & 0o777;

function weft(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(WEFT_BIN, args, { env: { ...process.env, WEFT_TOKEN: '', WEFT_TOKEN_FILE: '', ...env } }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

/** Says hello on the push stream with `token` and returns the server's first answer (welcome or error). */
function hello(p: ServerProcess, host: string, token: string): Promise<ServerMessage> {
  return new Promise((resolve, reject) => {
    const sock = connect(p.stream.port, p.stream.host);
    const reader = new MessageReader();
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no answer to the hello in 10 s'));
    }, 10_000);
    sock.on('error', () => undefined);
    sock.on('connect', () => sock.write(encode({ t: 'hello', v: STREAM_VERSION, host, token, version: 0, vnis: [] })));
    sock.on('data', (chunk: Buffer) => {
      const m = (reader.push(chunk) as ServerMessage[])[0];
      if (!m) return;
      clearTimeout(timer);
      sock.destroy();
      resolve(m);
    });
  });
}

describe("security, the SQLite file is the owner's alone", () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-secrets-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a new database and its -wal and -shm are created 0600 under a umask of 022', async () => {
    const path = join(dir, 'new.db');
    const old = process.umask(0o022);
    let p: ServerProcess | undefined;
    try {
      p = await startServerProcess({ db: `sqlite:${path}`, adminToken: ADMIN });
      // A write, so the -wal and -shm exist.
      await new ApiClient(p.url, ADMIN).post('/v1/tenants', { name: 'acme' });
      for (const f of [path, `${path}-wal`, `${path}-shm`]) {
        assert.ok(existsSync(f), `${f} exists`);
        assert.equal(mode(f), 0o600, `${f} is 0600`);
      }
    } finally {
      process.umask(old);
      await p?.stop();
    }
  });

  test('an existing database others may read is tightened to 0600 when opened', async () => {
    const path = join(dir, 'loose.db');
    await (await SqliteStore.open(path)).close();
    chmodSync(path, 0o644);
    const store = await SqliteStore.open(path);
    await store.close();
    assert.equal(mode(path), 0o600);
  });
});

for (const dialect of DIALECTS) {
  describe(`security, tokens at rest: ${dialect}`, () => {
    let db: TestDb;
    let server: ServerProcess;
    let admin: ApiClient;
    let hostId: string;
    const dir = mkdtempSync(join(tmpdir(), 'weft-secrets-'));

    before(async () => {
      db = await testDb(dialect);
      // A token made before 0009, stored the old way (its plain SHA-256), then the server migrates the store.
      const old = await db.open('0008-host-svp-client-addresses');
      await old.write((tx) =>
        // The 0008 row: no salt, lookup, expiry or last use.
        tx.insert('tokens', {
          id: '01legacytoken0000000000000',
          name: 'legacy',
          role: 'admin',
          tenantId: null,
          hostId: null,
          secretHash: sha256Hex(LEGACY),
          createdAt: new Date().toISOString(),
        } as unknown as TokenRow),
      );
      await old.close();
      server = await startServerProcess({ db: db.url, adminToken: ADMIN });
      admin = new ApiClient(server.url, ADMIN);
      await admin.post('/v1/sites', { name: 's1', underlayPool: '192.0.2.0/24' });
      hostId = (await admin.post<{ id: string }>('/v1/hosts', { name: 'hv1', site: 's1', capacity: { cpus: 8, memoryMb: 8192, diskGb: 10 } })).id;
    });
    after(async () => {
      await server?.stop();
      await db?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('no row holds a secret or its plain SHA-256: each has its own salt', async () => {
      const made = await admin.post<{ token: Token; secret: string }>('/v1/tokens', { name: 'ops', role: 'admin' });
      const store = await db.open();
      try {
        const rows = await store.read((tx) => tx.all('tokens', {}));
        const dump = JSON.stringify(rows);
        for (const secret of [ADMIN, LEGACY, made.secret]) {
          assert.ok(!dump.includes(secret), 'no secret in the table');
          assert.ok(!dump.includes(sha256Hex(secret)), 'no plain SHA-256 of a secret in the table');
        }
        assert.equal(new Set(rows.map((r) => r.salt)).size, rows.length, 'a salt per row');
        for (const r of rows) {
          assert.match(r.salt, /^[0-9a-f]{32}$/);
          assert.match(r.lookup, /^[0-9a-f]{12}$/);
        }
      } finally {
        await store.close();
      }
      assert.equal((await new ApiClient(server.url, made.secret).get<{ items: unknown[] }>('/v1/sites')).items.length, 1);
    });

    test('a token made before the salts still authenticates, and a wrong secret with its lookup key does not', async () => {
      assert.equal((await new ApiClient(server.url, LEGACY).get<{ items: unknown[] }>('/v1/sites')).items.length, 1);
      // Another secret: refused, however it is shaped.
      await assert.rejects(new ApiClient(server.url, `${LEGACY}x`).get('/v1/sites'), /unknown or revoked token/);
    });

    test('an admin secret with less than 128 bits is refused, naming where it came from', async () => {
      const store = await db.open();
      try {
        const ctx = createCtx(store);
        for (const weak of ['short-secret-1', 'a'.repeat(64), '0123456789abcdef'])
          await assert.rejects(ensureAdminToken(ctx, weak), (e: { field?: string; message: string }) => {
            assert.equal(e.field, 'WEFT_ADMIN_TOKEN');
            assert.match(e.message, /at least 128 bits/);
            return true;
          });
        await assert.rejects(createToken(ctx, { name: 'weak', role: 'admin' }, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'), /at least 128 bits/);
      } finally {
        await store.close();
      }
      // And a server given one does not start.
      const p = spawn(WEFT_BIN, ['server', '--db', db.url, '--api', '127.0.0.1:0', '--svp', 'off', '--stream', 'off'], {
        env: { ...process.env, WEFT_ADMIN_TOKEN: 'admin-admin' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      p.stderr.on('data', (d) => {
        err += d;
      });
      const code = await new Promise<number | null>((r) => p.on('exit', r));
      assert.notEqual(code, 0);
      assert.match(err, /WEFT_ADMIN_TOKEN/);
      assert.doesNotMatch(err, /admin-admin/, 'the refused secret is not printed');
    });

    test('an expired token is refused on the API and on the push stream, saying it expired', async () => {
      const at = new Date(Date.now() + 2500).toISOString();
      const agent = await admin.post<{ token: Token; secret: string }>('/v1/tokens', { name: 'soon', role: 'agent', host: 'hv1', expiresAt: at });
      assert.equal(agent.token.expiresAt, at);
      assert.equal((await hello(server, 'hv1', agent.secret)).t, 'welcome');
      await new Promise((r) => setTimeout(r, Date.parse(at) - Date.now() + 200));
      await assert.rejects(new ApiClient(server.url, agent.secret).get(`/v1/hosts/${hostId}`), (e: { code: string; message: string }) => {
        assert.equal(e.code, 'E_UNAUTHENTICATED');
        assert.match(e.message, /token soon expired at /);
        return true;
      });
      const m = await hello(server, 'hv1', agent.secret);
      assert.equal(m.t, 'error');
      assert.match(JSON.stringify(m), /E_UNAUTHENTICATED.*expired/);
    });

    test('expiresAt must be an ISO time in the future: the API names the field and writes nothing', async () => {
      const before = (await admin.get<{ items: unknown[] }>('/v1/tokens?limit=1000')).items.length;
      for (const bad of ['tomorrow', '2020-01-01T00:00:00Z', '2027-13-45T00:00:00Z'])
        await assert.rejects(
          admin.post('/v1/tokens', { name: 'bad', role: 'admin', expiresAt: bad }),
          (e: { code: string; field?: string; message: string }) => {
            assert.equal(e.code, 'E_INVALID_ARG');
            assert.equal(e.field, 'expiresAt');
            assert.ok(e.message.includes(bad), e.message);
            return true;
          },
        );
      assert.equal((await admin.get<{ items: unknown[] }>('/v1/tokens?limit=1000')).items.length, before);
    });

    test('lastUsedAt shows a use, and many requests write it once', async () => {
      const t = await admin.post<{ token: Token; secret: string }>('/v1/tokens', { name: 'used', role: 'admin' });
      assert.equal(t.token.lastUsedAt, null);
      const c = new ApiClient(server.url, t.secret);
      await c.get('/v1/sites');
      const first = (await admin.get<Token>(`/v1/tokens/${t.token.id}`)).lastUsedAt;
      assert.ok(first !== null && Date.now() - Date.parse(first) < 60_000, `lastUsedAt ${first}`);
      for (let i = 0; i < 20; i++) await c.get('/v1/sites');
      assert.equal((await admin.get<Token>(`/v1/tokens/${t.token.id}`)).lastUsedAt, first, 'not rewritten within the minute');
    });

    test('the CLI reads --token-file only when others cannot read it', async () => {
      const file = join(dir, 'token');
      writeFileSync(file, `${ADMIN}\n`, { mode: 0o644 });
      chmodSync(file, 0o644);
      const loose = await weft(['--api', server.url, '--token-file', file, 'site', 'list']);
      assert.notEqual(loose.code, 0);
      assert.match(loose.err, new RegExp(`--token-file ${file}: its mode 0644 lets group or others read the token.*chmod 600 ${file}`));
      assert.ok(!loose.err.includes(ADMIN), 'the token is not printed');
      chmodSync(file, 0o600);
      const ok = await weft(['--api', server.url, 'site', 'list'], { WEFT_TOKEN_FILE: file });
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /s1/);
    });

    test('weft token create --output-file writes the secret to a new 0600 file and prints none', async () => {
      const file = join(dir, 'ops-token');
      const r = await weft([
        '--api',
        server.url,
        '--token',
        ADMIN,
        'token',
        'create',
        '--role',
        'admin',
        '--name',
        'filed',
        '--output-file',
        file,
        '--expires-in',
        '30d',
      ]);
      assert.equal(r.code, 0, r.err);
      assert.equal(mode(file), 0o600);
      const secret = readFileSync(file, 'utf8').trim();
      assert.match(secret, /^weft_[A-Za-z0-9_-]{43}$/);
      assert.ok(!r.out.includes(secret) && !r.err.includes(secret), 'the secret is not printed');
      assert.match(r.out, /secret written to/);
      const me = await new ApiClient(server.url, secret).get<{ items: Token[] }>('/v1/tokens?limit=1000');
      const filed = me.items.find((t) => t.name === 'filed') as Token;
      assert.ok(Math.abs(Date.parse(filed.expiresAt as string) - (Date.now() + 30 * 86_400_000)) < 120_000, `expiresAt ${filed.expiresAt}`);
      const again = await weft(['--api', server.url, '--token', ADMIN, 'token', 'create', '--role', 'admin', '--output-file', file]);
      assert.notEqual(again.code, 0);
      assert.match(again.err, /--output-file .*exists/);
      const bad = await weft(['--api', server.url, '--token', ADMIN, 'token', 'create', '--role', 'admin', '--expires-in', '3 days']);
      assert.notEqual(bad.code, 0);
      assert.match(bad.err, /--expires-in "3 days": must be a positive number with m, h, d or w/);
    });
  });
}

const LEGACY = 'legacy-admin-secret-made-before-0009-xyz';
