// TLS and mutual TLS against a real server: a throwaway CA, a server
// certificate and one certificate per host made with openssl. An agent with
// its own host's certificate gets its desired state; one without a
// certificate, with another host's (even with the right token), or with a
// certificate from another CA is refused, and each refusal is logged; plain
// TCP to the TLS listener is closed without the token ever being read; the
// CLI reaches the HTTPS API with --ca-file and explains what to do without it.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { streamTlsFiles } from '../../src/agent/main.js';
import { AgentState } from '../../src/agent/state/agent-state.js';
import { ApiClient } from '../../src/cli/client.js';
import { WEFT_BIN } from '../../src/lab/server-process.js';
import type { WeftError } from '../../src/model/errors.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { StreamClient } from '../../src/stream/client.js';
import { encode, MessageReader, type ServerMessage, STREAM_VERSION } from '../../src/stream/protocol.js';
import { until } from '../../src/sys/until.js';
import { type TestDb, testDb } from '../support/stores.js';

const ADMIN = 'tls-test-admin-token-0123456789';

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

describe('TLS and mutual TLS', () => {
  let dir: string;
  let db: TestDb;
  let server: RunningServer;
  let admin: ApiClient;
  let streamPort: number;
  const secrets = new Map<string, string>();
  /** The server's log lines about the push stream (it writes them to stderr). */
  const logged: string[] = [];
  const realWrite = process.stderr.write.bind(process.stderr);
  const f = (name: string) => join(dir, name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-tls-'));
    // The CA, the server's certificate (the address agents and the CLI use in its SAN), one per host.
    openssl(dir, [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=weft test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ]);
    openssl(dir, [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=other CA',
      '-keyout',
      'other-ca.key',
      '-out',
      'other-ca.crt',
    ]);
    // As docs/security.md tells operators to: the hosts' certificates for client authentication.
    const sign = (ca: string, file: string, cn: string, san: string, extra: string[] = ['-addext', 'extendedKeyUsage=clientAuth']) => {
      openssl(dir, [
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        `/CN=${cn}`,
        '-keyout',
        `${file}.key`,
        '-out',
        `${file}.csr`,
      ]);
      openssl(dir, [
        'req',
        '-x509',
        '-in',
        `${file}.csr`,
        '-CA',
        `${ca}.crt`,
        '-CAkey',
        `${ca}.key`,
        '-days',
        '2',
        '-copy_extensions',
        'none',
        '-addext',
        `subjectAltName=${san}`,
        ...extra,
        '-out',
        `${file}.crt`,
      ]);
    };
    sign('ca', 'server', 'weft server', 'IP:127.0.0.1', []);
    sign('ca', 'hv1', 'hv1', 'DNS:hv1');
    sign('ca', 'hv2', 'hv2', 'DNS:hv2');
    sign('other-ca', 'hv1-other', 'hv1', 'DNS:hv1');
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      const text = String(chunk);
      if (text.includes('push stream')) logged.push(text);
      return realWrite(chunk, ...rest);
    }) as typeof process.stderr.write;
    db = await testDb('sqlite');
    server = await startServer({
      db: db.url,
      api: '127.0.0.1:0',
      svp: 'off',
      stream: '127.0.0.1:0',
      streamTls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt') },
      apiTls: { cert: f('server.crt'), key: f('server.key') },
      placement: 'spread',
      cpuOvercommit: 1,
      adminToken: ADMIN,
      logLevel: 'silent',
    });
    streamPort = Number((server.streamAddress as string).split(':').at(-1));
    assert.match(server.apiUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    admin = new ApiClient(server.apiUrl, ADMIN, { ca: readFileSync(f('ca.crt')) });
    await admin.post('/v1/sites', { name: 's', underlayPool: '192.0.2.0/24' });
    for (const host of ['hv1', 'hv2']) {
      await admin.post('/v1/hosts', { name: host, site: 's', capacity: { cpus: 1, memoryMb: 1024, diskGb: 1 } });
      secrets.set(host, (await admin.post<{ secret: string }>('/v1/tokens', { name: `${host}-agent`, role: 'agent', host })).secret);
    }
  });

  after(async () => {
    process.stderr.write = realWrite;
    await server?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A hello over TLS with the given client certificate (or none): the server's first answer and whether it then closed. */
  function hello(o: { cert?: string; host: string; token: string }): Promise<{ first: ServerMessage | null; closed: boolean }> {
    const sock = tlsConnect({
      host: '127.0.0.1',
      port: streamPort,
      ca: readFileSync(f('ca.crt')),
      ...(o.cert ? { cert: readFileSync(f(`${o.cert}.crt`)), key: readFileSync(f(`${o.cert}.key`)) } : {}),
    });
    const reader = new MessageReader();
    let first: ServerMessage | null = null;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error('no answer and no close in 10 s'));
      }, 10_000);
      sock.on('secureConnect', () => sock.write(encode({ t: 'hello', v: STREAM_VERSION, host: o.host, token: o.token, version: 0, vnis: [] })));
      sock.on('data', (chunk: Buffer) => {
        for (const m of reader.push(chunk) as ServerMessage[]) {
          first ??= m;
          // A welcomed session is enough: closed by the test.
          if (m.t === 'welcome') sock.destroy();
        }
      });
      sock.on('error', () => sock.destroy());
      sock.on('close', () => {
        clearTimeout(timer);
        resolve({ first, closed: true });
      });
    });
  }

  test("an agent with its own host's certificate connects and gets its desired state", async () => {
    const state = new AgentState('');
    const c = new StreamClient({
      host: '127.0.0.1',
      port: streamPort,
      tlsCa: readFileSync(f('ca.crt')),
      tlsCert: readFileSync(f('hv1.crt')),
      tlsKey: readFileSync(f('hv1.key')),
      hostRef: 'hv1',
      token: secrets.get('hv1') as string,
      handler: { snapshot: (v, s) => state.snapshot(v, s), delta: (v, ch, vn) => state.delta(v, ch, vn) },
    });
    c.start();
    try {
      await until('the snapshot over mutual TLS', () => state.host !== null, 10_000);
      assert.equal(state.host?.name, 'hv1');
      const agents = await admin.get<{ items: { hostId: string }[] }>('/v1/agents');
      assert.equal(agents.items.length, 1);
    } finally {
      c.stop();
    }
  });

  test('no client certificate: refused before the hello is read, and logged', async () => {
    const before = logged.length;
    const r = await hello({ host: 'hv1', token: secrets.get('hv1') as string });
    assert.equal(r.first?.t, 'error');
    assert.equal((r.first as { code: string }).code, 'E_UNAUTHENTICATED');
    assert.match((r.first as { message: string }).message, /^no client certificate: .*--stream-tls-cert/);
    assert.ok(r.closed);
    assert.ok(
      logged.slice(before).some((l) => l.includes('no client certificate')),
      'the refusal is logged',
    );
  });

  test("another host's certificate (same CA) is refused E_FORBIDDEN even with the right token, and logged", async () => {
    const before = logged.length;
    const r = await hello({ cert: 'hv2', host: 'hv1', token: secrets.get('hv1') as string });
    assert.deepEqual(r.first, {
      t: 'error',
      code: 'E_FORBIDDEN',
      message: "client certificate (hv2) is not host hv1's: its subject CN or a DNS subjectAltName must be hv1",
    });
    assert.ok(r.closed);
    assert.ok(
      logged.slice(before).some((l) => l.includes("is not host hv1's")),
      'the refusal is logged',
    );
    // An admin token does not lift the binding either.
    const a = await hello({ cert: 'hv2', host: 'hv1', token: ADMIN });
    assert.equal((a.first as { code: string }).code, 'E_FORBIDDEN');
    // And the certificate alone is not enough: hv2's certificate with a wrong token is refused by the token check.
    const t = await hello({ cert: 'hv2', host: 'hv2', token: 'weft_not-a-token-of-this-server-000' });
    assert.equal((t.first as { code: string }).code, 'E_UNAUTHENTICATED');
    // hv2's own certificate and token: welcomed.
    const ok = await hello({ cert: 'hv2', host: 'hv2', token: secrets.get('hv2') as string });
    assert.equal(ok.first?.t, 'welcome');
  });

  test('a certificate from another CA is refused, naming why', async () => {
    const r = await hello({ cert: 'hv1-other', host: 'hv1', token: secrets.get('hv1') as string });
    assert.equal((r.first as { code: string }).code, 'E_UNAUTHENTICATED');
    assert.match((r.first as { message: string }).message, /^client certificate refused: not signed by the stream's CA/);
    assert.ok(r.closed);
  });

  test("the agent's client backs off on a refused certificate and says why", async () => {
    const refusals: WeftError[] = [];
    const c = new StreamClient({
      host: '127.0.0.1',
      port: streamPort,
      tlsCa: readFileSync(f('ca.crt')),
      tlsCert: readFileSync(f('hv2.crt')),
      tlsKey: readFileSync(f('hv2.key')),
      hostRef: 'hv1',
      token: secrets.get('hv1') as string,
      handler: { snapshot: () => {}, delta: () => {} },
      onRefused: (e) => refusals.push(e),
    });
    c.start();
    try {
      await until('the refusal', () => refusals.length > 0, 10_000);
      assert.equal(refusals[0]?.code, 'E_FORBIDDEN');
      assert.equal(c.connected, false);
    } finally {
      c.stop();
    }
  });

  test('plain TCP to the TLS listener: closed, the token never read, the server unharmed', async () => {
    const sock = tcpConnect(streamPort, '127.0.0.1');
    let got = Buffer.alloc(0);
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('error', () => sock.destroy());
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
    });
    sock.on('connect', () => sock.write(encode({ t: 'hello', v: STREAM_VERSION, host: 'hv1', token: secrets.get('hv1') as string, version: 0, vnis: [] })));
    await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error('not closed in 10 s')), 10_000))]);
    // Whatever came back (a TLS alert at most) is no protocol message: no welcome, no session.
    assert.doesNotMatch(got.toString('latin1'), /welcome|snapshot/);
    assert.ok(got.length < 64, `${got.length} bytes back`);
    // Still serving: a proper agent is welcomed.
    const ok = await hello({ cert: 'hv1', host: 'hv1', token: secrets.get('hv1') as string });
    assert.equal(ok.first?.t, 'welcome');
  });

  test('the API over HTTPS: plain HTTP to it gets no answer', async () => {
    const plain = new ApiClient(server.apiUrl.replace('https:', 'http:'), ADMIN);
    await assert.rejects(
      () => plain.get('/v1/hosts'),
      (e: WeftError) => e.code === 'E_UNAVAILABLE' || e.code === 'E_INTERNAL',
    );
    const hosts = await admin.get<{ items: { name: string }[] }>('/v1/hosts');
    assert.deepEqual(hosts.items.map((h) => h.name).sort(), ['hv1', 'hv2']);
  });

  function weft(args: string[]): Promise<{ code: number; out: string; err: string }> {
    return new Promise((resolve) => {
      const env: NodeJS.ProcessEnv = { ...process.env, WEFT_TOKEN: ADMIN };
      delete env.WEFT_CA_FILE;
      execFile(WEFT_BIN, args, { env, timeout: 60_000 }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }));
    });
  }

  test('the CLI against the HTTPS API: works with --ca-file, and says to pass it without', async () => {
    const ok = await weft(['--api', server.apiUrl, '--ca-file', f('ca.crt'), '-o', 'json', 'host', 'list']);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /"hv1"/);
    const bare = await weft(['--api', server.apiUrl, 'host', 'list']);
    // 3: the API could not be reached (the CLI's exit status for E_UNAVAILABLE).
    assert.equal(bare.code, 3);
    assert.match(
      bare.err,
      /^error: cannot reach the API at https:\/\/127\.0\.0\.1:\d+: the API's TLS certificate is not signed by a CA this machine trusts \([A-Z_]+\): pass its CA with --ca-file FILE/,
    );
    assert.equal(bare.err.trim().split('\n').length, 1, `one line: ${bare.err}`);
    // A name the certificate does not hold.
    const name = await weft(['--api', server.apiUrl.replace('127.0.0.1', 'localhost'), '--ca-file', f('ca.crt'), 'host', 'list']);
    assert.equal(name.code, 3);
    assert.match(name.err, /does not name this host .*subjectAltName/);
    // The wrong CA.
    const other = await weft(['--api', server.apiUrl, '--ca-file', f('other-ca.crt'), 'host', 'list']);
    assert.equal(other.code, 3);
    assert.match(other.err, /not signed by the CA in --ca-file/);
    // A --ca-file that is no certificate.
    const key = await weft(['--api', server.apiUrl, '--ca-file', f('ca.key'), 'host', 'list']);
    assert.equal(key.code, 1);
    assert.match(key.err, /^error: invalid --ca-file ".*ca\.key": holds a PEM PRIVATE KEY; must be a PEM certificate/);
  });

  test('bad or missing PEM files stop the server and the agent at start, naming the flag and the file', async () => {
    const base = {
      db: 'sqlite::memory:',
      api: '127.0.0.1:0',
      svp: 'off',
      stream: '127.0.0.1:0',
      placement: 'spread',
      cpuOvercommit: 1,
      logLevel: 'silent',
    } as const;
    await assert.rejects(
      () => startServer({ ...base, streamTls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.key') } }),
      /invalid --stream-tls-ca ".*ca\.key": holds a PEM PRIVATE KEY; must be a PEM certificate/,
    );
    await assert.rejects(
      () => startServer({ ...base, apiTls: { cert: f('missing.crt'), key: f('server.key') } }),
      /invalid --api-tls-cert ".*missing\.crt": cannot read it \(ENOENT\)/,
    );
    await assert.rejects(
      () => startServer({ ...base, apiTls: { cert: f('server.crt'), key: f('hv1.key') } }),
      /^WeftError: invalid TLS files \(--api-tls-cert ".*server\.crt", --api-tls-key ".*hv1\.key"\): key values mismatch; the key must be the certificate's$/,
    );
    await assert.rejects(() => startServer({ ...base, streamTlsCa: f('ca.crt') }), /invalid --stream-tls-ca .*needs the stream itself over TLS/);
    assert.throws(
      () => streamTlsFiles({ ca: f('ca.crt'), cert: f('hv1.key'), key: f('hv1.key') }),
      /invalid --stream-tls-cert ".*hv1\.key": holds a PEM PRIVATE KEY/,
    );
    assert.throws(() => streamTlsFiles({ ca: f('ca.crt'), cert: f('hv1.crt') }), /invalid --stream-tls-key \(none\): --stream-tls-cert is given/);
    assert.throws(() => streamTlsFiles({ cert: f('hv1.crt'), key: f('hv1.key') }), /invalid --stream-tls-ca \(none\)/);
    assert.deepEqual(streamTlsFiles({}), undefined);
    const r = await weft(['server', '--db', 'sqlite::memory:', '--api-tls-cert', f('server.crt')]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^error: invalid --api-tls-key \(none\): --api-tls-cert is given; TLS needs both --api-tls-cert and --api-tls-key/);
  });
});
