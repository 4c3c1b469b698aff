// `weft console`: an instance's serial console end to end. A real server,
// a real agent (runAgent, in a network namespace of its own, managing the
// host's VM files), a console socket served by a real process that speaks
// on a pty (python's pty module: a shell printing a login prompt, then
// cat, so what is typed comes back through the terminal's echo), and the
// CLI as an operator runs it. One session at a time unless --force; another
// tenant's instance is "not found"; a revoked token ends the session.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type RunningAgent, runAgent } from '../../src/agent/main.js';
import { ApiClient } from '../../src/cli/client.js';
import { WEFT_BIN } from '../../src/lab/server-process.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { quietLog } from '../../src/sys/log.js';
import { until } from '../../src/sys/until.js';
import { type TestDb, testDb } from '../support/stores.js';

const sh = promisify(execFile);
const TOKEN = 'console-test-admin-token-0123456789';
const NS = `weft-console-${process.pid}`;

// A console socket as qemu serves one (mode='bind'): each connection gets a pty with a shell behind it.
const PTY_SERVER = `
import os, pty, select, signal, socket, sys
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(4)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
while True:
    conn, _ = srv.accept()
    # Each connection in a process of its own: one that hangs never blocks the next.
    if os.fork() != 0:
        conn.close()
        continue
    srv.close()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv('/bin/sh', ['sh', '-c', 'printf "weft-test login: "; exec cat'])
    try:
        while True:
            r, _, _ = select.select([conn, fd], [], [])
            if conn in r:
                b = conn.recv(4096)
                if not b:
                    break
                os.write(fd, b)
            if fd in r:
                try:
                    b = os.read(fd, 4096)
                except OSError:
                    break
                if not b:
                    break
                conn.sendall(b)
    finally:
        conn.close()
        os.close(fd)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os._exit(0)
`;

/** A `weft console` process, with what it printed so far. */
interface Cli {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number>;
}

/** A sanity bound for each wait (a busy machine is slow, not broken). */
const wait = (what: string, ok: () => boolean | Promise<boolean>) => until(what, ok, 20_000);

describe('weft console: a serial console through the API and the agent', () => {
  let db: TestDb;
  let server: RunningServer;
  let agent: RunningAgent | undefined;
  let dir: string;
  let pty: ChildProcess | undefined;
  const clis: Cli[] = [];
  let acme: { id: string; secret: string };
  let globex: string;
  let instanceId: string;

  const console_ = (token: string, args: string[] = []): Cli => {
    let out = '';
    let err = '';
    const proc = spawn(WEFT_BIN, ['console', 'web1', ...args], { env: { ...process.env, WEFT_API: server.apiUrl, WEFT_TOKEN: token }, stdio: 'pipe' });
    proc.stdout?.on('data', (d) => (out += d));
    proc.stderr?.on('data', (d) => (err += d));
    const exited = new Promise<number>((r) => proc.on('exit', (code) => r(code ?? -1)));
    const c = { proc, out: () => out, err: () => err, exited };
    clis.push(c);
    return c;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-console-'));
    await sh('ip', ['netns', 'add', NS]);
    db = await testDb('sqlite');
    server = await startServer({
      db: db.url,
      api: '127.0.0.1:0',
      svp: '127.0.0.1:0',
      stream: '127.0.0.1:0',
      placement: 'spread',
      cpuOvercommit: 1,
      adminToken: TOKEN,
      logLevel: 'silent',
    });
    const api = new ApiClient(server.apiUrl, TOKEN);
    await api.post('/v1/sites', { name: 'ams1', underlayPool: '127.0.0.0/24' });
    await api.post('/v1/hosts', { name: 'hv1', site: 'ams1', capacity: { cpus: 8, memoryMb: 16384, diskGb: 1000 } });
    for (const t of ['acme', 'globex']) await api.post('/v1/tenants', { name: t });
    const a = await api.post<{ token: { id: string }; secret: string }>('/v1/tokens', { name: 'acme-ops', role: 'tenant', tenant: 'acme' });
    acme = { id: a.token.id, secret: a.secret };
    globex = (await api.post<{ secret: string }>('/v1/tokens', { name: 'globex-ops', role: 'tenant', tenant: 'globex' })).secret;
    instanceId = (await api.post<{ id: string }>('/v1/instances', { tenant: 'acme', name: 'web1', site: 'ams1', size: 'nano', image: 'debian-12' })).id;
    const agentToken = (await api.post<{ secret: string }>('/v1/tokens', { name: 'hv1-agent', role: 'agent', host: 'hv1' })).secret;
    const [host, port] = (server.streamAddress as string).split(':') as [string, string];
    agent = await runAgent({
      server: host,
      streamPort: Number(port),
      host: 'hv1',
      token: agentToken,
      metrics: 'off',
      netns: NS,
      log: quietLog,
      routing: null,
      vm: { dir },
    });
    const idir = join(dir, 'instances', instanceId);
    await wait('the agent wrote the instance', () => existsSync(join(idir, 'domain.xml')));
    const script = join(dir, 'pty-server.py');
    await writeFile(script, PTY_SERVER);
    pty = spawn('/usr/bin/python3', [script, join(idir, 'console.sock')], { stdio: 'ignore' });
    await wait('the console socket', () => existsSync(join(idir, 'console.sock')));
  });
  after(async () => {
    for (const c of clis) c.proc.kill('SIGKILL');
    pty?.kill('SIGKILL');
    await agent?.stop();
    await server?.close();
    await db?.drop();
    await sh('ip', ['netns', 'del', NS]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  test('a handshake that fails leaves no session behind', async () => {
    // An upgrade without Sec-WebSocket-Key: authenticated, so the session is opened, then the handshake is refused.
    const u = new URL(server.apiUrl);
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(u.port), u.hostname, () =>
        sock.write(
          `GET /v1/instances/web1/console HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${acme.secret}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
        ),
      );
      let got = '';
      sock.on('data', (d) => (got += d));
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400/);
    const probe = console_(acme.secret);
    await wait('a console attaches: the failed one left nothing', () => probe.err().includes('Connected'));
    // Ctrl-] detaches.
    probe.proc.stdin?.write(Buffer.from([0x1d]));
    assert.equal(await probe.exited, 0, 'detached');
    assert.match(probe.err(), /Detached/);
    clis.splice(clis.indexOf(probe), 1);
  });

  test('what is typed reaches the pty and its echo comes back', async () => {
    const c = console_(acme.secret);
    await wait('the login prompt', () => c.out().includes('weft-test login: '));
    assert.match(c.err(), /Connected to the console of web1/);
    c.proc.stdin?.write('hello-console\n');
    await wait('the echo', () => c.out().includes('hello-console'));
  });

  test('one session at a time: a second is refused, --force takes it over', async () => {
    const second = console_(acme.secret);
    assert.equal(await second.exited, 1);
    assert.match(second.err(), /already has a console session/);
    const first = clis[0] as Cli;
    const forced = console_(acme.secret, ['--force']);
    await wait('the forced session attached', () => forced.err().includes('Connected'));
    assert.equal(await first.exited, 1, 'the first session ends');
    assert.match(first.err(), /Console closed: taken over/);
    forced.proc.stdin?.write('after-force\n');
    await wait('the forced session works', () => forced.out().includes('after-force'));
  });

  test("another tenant's instance is not found; a revoked token ends the session", async () => {
    const other = console_(globex);
    assert.equal(await other.exited, 4);
    assert.match(other.err(), /instance "web1" not found|not found/);
    const forced = clis[2] as Cli;
    await new ApiClient(server.apiUrl, TOKEN).delete(`/v1/tokens/${acme.id}`);
    assert.equal(await forced.exited, 1);
    assert.match(forced.err(), /Console closed: token revoked/);
  });
});
