import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { test } from 'node:test';
import { type CheckedTarget, HealthChecker, type HealthSpec, type Probe, type ProbeTarget, realProbe, type Timers } from './health.js';

/** Timers on a clock that moves only when told; promises settle between timers. */
class FakeTimers implements Timers {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Moves the clock to `at`, firing every timer due on the way in order. */
  async to(at: number): Promise<void> {
    for (;;) {
      await flush();
      let due: [number, { at: number; fn: () => void }] | null = null;
      for (const entry of this.timers) if (entry[1].at <= at && (due === null || entry[1].at < due[1].at)) due = entry;
      if (due === null) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = Math.max(this.t, at);
    await flush();
  }

  advance(ms: number): Promise<void> {
    return this.to(this.t + ms);
  }
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

type Outcome = 'ok' | 'fail' | 'throw' | 'reject';

/** A probe whose outcomes are scripted per address and which takes `delay` ms of fake time. */
class ScriptedProbe {
  readonly calls: { at: number; address: string }[] = [];
  readonly delay = new Map<string, number>();
  maxRunning = 0;
  private readonly script = new Map<string, Outcome[]>();
  private readonly running = new Map<string, number>();

  constructor(private readonly clock: FakeTimers) {}

  /** The next outcomes of `address`; the last one repeats. */
  will(address: string, ...outcomes: Outcome[]): void {
    this.script.set(address, outcomes);
  }

  count(address: string): number {
    return this.calls.filter((c) => c.address === address).length;
  }

  times(address: string): number[] {
    return this.calls.filter((c) => c.address === address).map((c) => c.at);
  }

  readonly fn: Probe = (t: ProbeTarget) => {
    const queue = this.script.get(t.address) ?? ['ok'];
    const outcome = queue.length > 1 ? (queue.shift() as Outcome) : (queue[0] ?? 'ok');
    this.calls.push({ at: this.clock.now(), address: t.address });
    if (outcome === 'throw') throw new Error('probe blew up');
    const running = (this.running.get(t.address) ?? 0) + 1;
    this.running.set(t.address, running);
    this.maxRunning = Math.max(this.maxRunning, running);
    const delay = this.delay.get(t.address) ?? 0;
    return new Promise((resolve, reject) => {
      const done = () => {
        this.running.set(t.address, (this.running.get(t.address) ?? 1) - 1);
        if (outcome === 'reject') reject(new Error('probe rejected'));
        else resolve(outcome === 'ok' ? { ok: true, ms: delay } : { ok: false, error: 'ECONNREFUSED', ms: delay });
      };
      if (delay > 0) this.clock.setTimeout(done, delay);
      else done();
    });
  };
}

const SPEC: HealthSpec = { intervalMs: 100, timeoutMs: 50, rise: 3, fall: 2 };

function target(address: string, spec: Partial<HealthSpec> = {}, initiallyHealthy?: boolean): CheckedTarget {
  const c: CheckedTarget = { target: { address, port: 80, type: 'tcp', path: null }, spec: { ...SPEC, ...spec } };
  if (initiallyHealthy !== undefined) c.initiallyHealthy = initiallyHealthy;
  return c;
}

function setup(damping?: ConstructorParameters<typeof HealthChecker>[0]['damping']) {
  const clock = new FakeTimers();
  const probe = new ScriptedProbe(clock);
  const events: { at: number; key: string; healthy: boolean }[] = [];
  const hc = new HealthChecker({ probe: probe.fn, clock, damping, onChange: (key, healthy) => events.push({ at: clock.now(), key, healthy }) });
  return { clock, probe, events, hc };
}

test('a target turns healthy after exactly rise successes and unhealthy after exactly fall failures', async () => {
  const { clock, probe, events, hc } = setup();
  probe.will('10.0.0.1', 'ok', 'ok', 'fail', 'ok', 'ok', 'ok', 'fail', 'ok', 'fail', 'fail');
  hc.set(new Map([['a', target('10.0.0.1')]]));
  assert.equal(probe.count('10.0.0.1'), 1, 'the first probe runs at once');
  await clock.to(100);
  assert.equal(hc.healthy('a'), false);
  await clock.to(200); // ok ok fail: the failure resets the run of successes
  assert.equal(hc.healthy('a'), false);
  assert.equal(hc.status()[0]?.consecutiveFail, 1);
  await clock.to(499);
  assert.equal(hc.healthy('a'), false);
  await clock.to(500); // ok ok ok at 300, 400, 500
  assert.equal(hc.healthy('a'), true);
  assert.deepEqual(events, [{ at: 500, key: 'a', healthy: true }]);
  await clock.to(800); // fail ok fail: never two in a row
  assert.equal(hc.healthy('a'), true);
  await clock.to(900); // fail
  assert.equal(hc.healthy('a'), false);
  await clock.to(1500);
  assert.deepEqual(events, [
    { at: 500, key: 'a', healthy: true },
    { at: 900, key: 'a', healthy: false },
  ]);
  const [s] = hc.status();
  assert.deepEqual(s, {
    key: 'a',
    healthy: false,
    suppressed: false,
    penalty: s?.penalty,
    consecutiveOk: 0,
    consecutiveFail: 8,
    lastError: 'ECONNREFUSED',
    lastMs: 0,
    checks: 16,
    failures: 10,
  });
  assert.deepEqual(probe.times('10.0.0.1').slice(0, 4), [0, 100, 200, 300]);
  hc.stop();
});

test('probes never overlap: a slow probe delays the next one until it finishes', async () => {
  const { clock, probe, hc } = setup();
  probe.delay.set('10.0.0.1', 250);
  probe.delay.set('10.0.0.2', 30);
  hc.set(
    new Map([
      ['slow', target('10.0.0.1')],
      ['fast', target('10.0.0.2')],
    ]),
  );
  await clock.to(1000);
  assert.deepEqual(probe.times('10.0.0.1'), [0, 250, 500, 750, 1000]);
  assert.deepEqual(probe.times('10.0.0.2'), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  assert.equal(probe.maxRunning, 1);
  hc.stop();
});

test('set() starts new targets, stops removed ones and leaves equal ones alone', async () => {
  const { clock, probe, events, hc } = setup();
  probe.delay.set('10.0.0.2', 50);
  hc.set(
    new Map([
      ['a', target('10.0.0.1', { rise: 1 })],
      ['b', target('10.0.0.2', { rise: 1, fall: 1 })],
    ]),
  );
  await clock.to(50);
  assert.deepEqual(events, [
    { at: 0, key: 'a', healthy: true },
    { at: 50, key: 'b', healthy: true },
  ]);
  // Equal entries (fresh objects) are not restarted: no extra probe.
  await clock.to(120);
  const before = probe.calls.length;
  hc.set(
    new Map([
      ['a', target('10.0.0.1', { rise: 1 })],
      ['b', target('10.0.0.2', { rise: 1, fall: 1 })],
    ]),
  );
  await clock.advance(0);
  assert.equal(probe.calls.length, before);
  // b is removed while its probe (started at 100, failing) is in flight: nothing more about b.
  probe.will('10.0.0.2', 'fail');
  await clock.to(200);
  hc.set(new Map([['a', target('10.0.0.1', { rise: 1 })]]));
  const bCalls = probe.count('10.0.0.2');
  await clock.to(1000);
  assert.equal(probe.count('10.0.0.2'), bCalls);
  assert.equal(hc.healthy('b'), false);
  assert.deepEqual(
    hc.status().map((s) => s.key),
    ['a'],
  );
  assert.equal(events.length, 2);
  assert.deepEqual(probe.times('10.0.0.1'), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  hc.stop();
});

test('set() restarts a target whose spec or address changed and keeps its health', async () => {
  const { clock, probe, events, hc } = setup();
  hc.set(new Map([['a', target('10.0.0.1', { rise: 1 })]]));
  await clock.to(150);
  assert.equal(hc.healthy('a'), true);
  hc.set(new Map([['a', target('10.0.0.1', { rise: 1, intervalMs: 300 })]]));
  await clock.to(1000);
  assert.deepEqual(probe.times('10.0.0.1'), [0, 100, 150, 450, 750]);
  assert.equal(hc.healthy('a'), true);
  // A new address while a probe is in flight: the new target's first probe waits for the old one.
  probe.delay.set('10.0.0.1', 80);
  probe.will('10.0.0.1', 'fail');
  probe.will('10.0.0.9', 'fail');
  await clock.to(1050); // the probe started at 1050, failing, is in flight
  hc.set(new Map([['a', target('10.0.0.9', { rise: 1, fall: 2, intervalMs: 300 })]]));
  await clock.to(1129);
  assert.deepEqual(probe.times('10.0.0.9'), []);
  await clock.to(1130);
  assert.deepEqual(probe.times('10.0.0.9'), [1130]);
  assert.equal(probe.maxRunning, 1);
  assert.equal(hc.healthy('a'), true, 'the dropped result of the old address does not count');
  assert.equal(hc.status()[0]?.consecutiveFail, 1);
  await clock.to(1430);
  assert.equal(hc.healthy('a'), false);
  assert.deepEqual(events, [
    { at: 0, key: 'a', healthy: true },
    { at: 1430, key: 'a', healthy: false },
  ]);
  hc.stop();
});

test('an initially healthy target reports nothing until it falls', async () => {
  const { clock, probe, events, hc } = setup();
  hc.set(
    new Map([
      ['up', target('10.0.0.1', {}, true)],
      ['down', target('10.0.0.2')],
    ]),
  );
  assert.equal(hc.healthy('up'), true);
  assert.equal(hc.healthy('down'), false);
  await clock.to(1000);
  assert.deepEqual(events, [{ at: 200, key: 'down', healthy: true }]);
  probe.will('10.0.0.1', 'fail');
  await clock.to(1200);
  assert.deepEqual(events.at(-1), { at: 1200, key: 'up', healthy: false });
  hc.stop();
});

test('damping does not touch a single failure and recovery', async () => {
  const { clock, probe, events, hc } = setup();
  const spec = { intervalMs: 200, timeoutMs: 200, rise: 3, fall: 2 };
  probe.will('10.0.0.1', 'ok', 'ok', 'ok', 'fail', 'fail', 'ok');
  hc.set(new Map([['a', target('10.0.0.1', spec)]]));
  await clock.to(3000);
  assert.deepEqual(events, [
    { at: 400, key: 'a', healthy: true },
    { at: 800, key: 'a', healthy: false },
    { at: 1400, key: 'a', healthy: true },
  ]);
  const [s] = hc.status();
  assert.equal(s?.suppressed, false);
  assert.ok(s !== undefined && s.penalty > 1900 && s.penalty < 2000, `penalty ${s?.penalty}: the first verdict is free`);
  hc.stop();
});

test('damping holds a flapping target unhealthy and releases it after the penalty decays', async () => {
  const { clock, probe, events, hc } = setup();
  const spec = { intervalMs: 1000, timeoutMs: 500, rise: 1, fall: 1 };
  probe.will('10.0.0.1', 'ok', 'fail', 'ok', 'fail', 'ok', 'fail', 'ok');
  hc.set(new Map([['a', target('10.0.0.1', spec)]]));
  await clock.to(3000);
  assert.deepEqual(
    events.map((e) => [e.at, e.healthy]),
    [
      [0, true],
      [1000, false],
      [2000, true],
      [3000, false],
    ],
  );
  await clock.to(4000); // the fourth change takes the penalty over 3000
  let s = hc.status()[0];
  assert.equal(s?.suppressed, true);
  assert.equal(hc.healthy('a'), false);
  assert.equal(s?.consecutiveOk, 1);
  await clock.to(60_000); // flaps at 5000 and 6000 while suppressed report nothing
  assert.equal(events.length, 4);
  assert.equal(hc.healthy('a'), false);
  await clock.to(200_000);
  assert.equal(events.length, 5);
  const release = events[4];
  assert.equal(release?.healthy, true);
  s = hc.status()[0];
  assert.equal(s?.suppressed, false);
  // The penalty at 6000 was about 5600 (under the cap of 12000): it reaches 750 some 87 s later.
  assert.ok(release !== undefined && release.at > 90_000 && release.at < 96_000, `released at ${release?.at}`);
  assert.equal(hc.healthy('a'), true);
  hc.stop();
});

test('a probe that throws or rejects counts as a failure with its message', async () => {
  const { clock, probe, hc } = setup();
  probe.will('10.0.0.1', 'throw');
  probe.will('10.0.0.2', 'reject');
  hc.set(
    new Map([
      ['t', target('10.0.0.1', {}, true)],
      ['r', target('10.0.0.2', {}, true)],
    ]),
  );
  await clock.to(100);
  const [r, t] = hc.status();
  assert.equal(t?.lastError, 'probe blew up');
  assert.equal(r?.lastError, 'probe rejected');
  assert.equal(t?.failures, 2);
  assert.equal(hc.healthy('t'), false);
  assert.equal(hc.healthy('r'), false);
  hc.stop();
});

test('an onChange that throws does not stop the checks', async () => {
  const clock = new FakeTimers();
  const probe = new ScriptedProbe(clock);
  let calls = 0;
  const hc = new HealthChecker({
    probe: probe.fn,
    clock,
    onChange: () => {
      calls++;
      throw new Error('boom');
    },
  });
  probe.will('10.0.0.1', 'ok', 'ok', 'ok', 'fail');
  hc.set(new Map([['a', target('10.0.0.1')]]));
  await clock.to(1000);
  assert.equal(calls, 2);
  assert.equal(probe.count('10.0.0.1'), 11);
  hc.stop();
});

test('stop() ends every check and drops results still in flight', async () => {
  const { clock, probe, events, hc } = setup();
  probe.delay.set('10.0.0.1', 50);
  hc.set(new Map([['a', target('10.0.0.1', { rise: 1 })]]));
  await clock.to(10);
  hc.stop();
  await clock.to(1000);
  assert.equal(probe.count('10.0.0.1'), 1);
  assert.deepEqual(events, []);
  assert.equal(clock.pending, 0);
  assert.deepEqual(hc.status(), []);
});

test('invalid targets and damping options are refused, changing nothing', () => {
  const { probe, hc } = setup();
  assert.throws(() => hc.set(new Map([['a', target('10.0.0.1', { rise: 0 })]])), { code: 'E_INVALID_ARG', message: /a\.rise 0/ });
  assert.throws(() => hc.set(new Map([['a', target('not-an-ip')]])), { code: 'E_INVALID_ARG', field: 'a.address' });
  assert.equal(probe.calls.length, 0);
  assert.throws(() => new HealthChecker({ onChange: () => {}, damping: { reuseAt: 5000 } }), { code: 'E_INVALID_ARG', field: 'damping.suppressAt' });
  assert.throws(() => new HealthChecker({ onChange: () => {}, damping: { maxSuppressMs: 1000 } }), { code: 'E_INVALID_ARG', field: 'damping.maxSuppressMs' });
  hc.stop();
});

// realProbe against real sockets on loopback.

async function listen(server: net.Server, host: string): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function close(server: net.Server): Promise<void> {
  if (server instanceof http.Server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const tcp = (address: string, port: number): ProbeTarget => ({ address, port, type: 'tcp', path: null });
const get = (address: string, port: number, path: string): ProbeTarget => ({ address, port, type: 'http', path });

test('realProbe tcp: a listening port passes and the connection is closed', { timeout: 5000 }, async () => {
  const closed: Promise<unknown>[] = [];
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.resume(); // read, so that the client's close is seen
    closed.push(once(sock, 'close'));
  });
  try {
    const port = await listen(server, '127.0.0.1');
    const r = await realProbe(tcp('127.0.0.1', port), 500);
    assert.equal(r.ok, true, r.error);
    assert.ok(r.ms >= 0 && r.ms < 500);
    while (closed.length === 0) await flush();
    await Promise.all(closed);
  } finally {
    await close(server);
  }
});

test('realProbe tcp: a closed port is refused', async () => {
  const server = net.createServer();
  const port = await listen(server, '127.0.0.1');
  await close(server);
  const r = await realProbe(tcp('127.0.0.1', port), 500);
  assert.deepEqual({ ok: r.ok, error: r.error }, { ok: false, error: 'ECONNREFUSED' });
});

test('realProbe http: 2xx and 3xx pass, 5xx fails, with the path and Host header asked for', async () => {
  const seen: { url: string | undefined; host: string | undefined; connection: string | undefined }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url, host: req.headers.host, connection: req.headers.connection });
    const status = req.url === '/healthz' ? 200 : req.url === '/moved' ? 302 : 503;
    res.writeHead(status, { 'content-type': 'text/plain' }).end('x'.repeat(100_000));
  });
  try {
    const port = await listen(server, '127.0.0.1');
    const ok = await realProbe(get('127.0.0.1', port, '/healthz'), 500);
    const moved = await realProbe(get('127.0.0.1', port, '/moved'), 500);
    const down = await realProbe(get('127.0.0.1', port, '/down?deep=1'), 500);
    assert.equal(ok.ok, true, ok.error);
    assert.equal(moved.ok, true, moved.error);
    assert.deepEqual({ ok: down.ok, error: down.error }, { ok: false, error: 'HTTP 503' });
    assert.deepEqual(seen, [
      { url: '/healthz', host: `127.0.0.1:${port}`, connection: 'close' },
      { url: '/moved', host: `127.0.0.1:${port}`, connection: 'close' },
      { url: '/down?deep=1', host: `127.0.0.1:${port}`, connection: 'close' },
    ]);
  } finally {
    await close(server);
  }
});

test('realProbe http over IPv6 puts the address in brackets', async (t) => {
  const server = http.createServer((req, res) => res.writeHead(req.headers.host === `[::1]:${(server.address() as AddressInfo).port}` ? 204 : 400).end());
  try {
    let port: number;
    try {
      port = await listen(server, '::1');
    } catch {
      t.skip('no IPv6 loopback');
      return;
    }
    const r = await realProbe(get('::1', port, '/'), 500);
    assert.equal(r.ok, true, r.error);
  } finally {
    if (server.listening) await close(server);
  }
});

test('realProbe http: a server that never answers times out and the socket is closed', { timeout: 5000 }, async () => {
  const held: net.Socket[] = [];
  const closed: Promise<unknown>[] = [];
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.resume(); // read, so that the client's close is seen
    held.push(sock);
    closed.push(once(sock, 'close'));
  });
  try {
    const port = await listen(server, '127.0.0.1');
    const r = await realProbe(get('127.0.0.1', port, '/'), 150);
    assert.deepEqual({ ok: r.ok, error: r.error }, { ok: false, error: 'timeout after 150 ms' });
    assert.ok(r.ms >= 140 && r.ms < 1000, `took ${r.ms} ms`);
    assert.equal(held.length, 1);
    await Promise.all(closed);
  } finally {
    for (const s of held) s.destroy();
    await close(server);
  }
});
