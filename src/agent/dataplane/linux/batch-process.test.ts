// IprouteBatch against a fake iproute2 that numbers lines over its life as
// the real one does: which lines of a batch failed, batches in order, a
// process that dies, hangs or cannot start, restarts; and OneShotBatch.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { test } from 'node:test';
import type { RunOptions } from '../../../sys/exec.js';
import { type BatchChild, IprouteBatch, OneShotBatch, SENTINEL } from './batch-process.js';

/** A fake `ip -force -batch -`: a line matching `fails` gets an error and `Command failed -:N`; `dies` ends the process; `hangs` stops it answering. */
class FakeIproute extends EventEmitter implements BatchChild {
  readonly stderr = new PassThrough();
  readonly stdin: Writable;
  readonly lines: string[] = [];
  ended = false;
  killed: string | null = null;
  private rest = '';
  private hung = false;
  private dead = false;

  constructor(private readonly o: { fails?: RegExp; dies?: RegExp; hangs?: RegExp; slowMs?: number } = {}) {
    super();
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        const ls = (this.rest + chunk.toString()).split('\n');
        this.rest = ls.pop() ?? '';
        for (const l of ls) this.line(l);
        cb();
      },
      final: (cb) => {
        this.ended = true;
        cb();
        this.exit(0, null);
      },
    });
  }

  private line(l: string): void {
    if (this.killed || this.hung || this.dead) return;
    this.lines.push(l);
    const n = this.lines.length;
    if (this.o.dies?.test(l)) {
      this.dead = true;
      this.exit(null, 'SIGSEGV');
      return;
    }
    if (this.o.hangs?.test(l)) {
      this.hung = true;
      return;
    }
    const end = `Object "${SENTINEL}" is unknown, try "ip help".\nCommand failed -:${n}\n`;
    if (l === SENTINEL) setTimeout(() => this.stderr.write(end), this.o.slowMs ?? 0);
    else if (this.o.fails?.test(l)) this.stderr.write(`RTNETLINK answers: File exists\nCommand failed -:${n}\n`);
  }

  private exit(code: number | null, signal: NodeJS.Signals | null): void {
    setImmediate(() => this.emit('exit', code, signal));
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.killed) return false;
    this.killed = signal;
    this.exit(null, signal);
    return true;
  }
}

function fakes(o: ConstructorParameters<typeof FakeIproute>[0] = {}) {
  const made: { cmd: string; args: string[]; child: FakeIproute }[] = [];
  const spawn = (cmd: string, args: string[]) => {
    const child = new FakeIproute(o);
    made.push({ cmd, args, child });
    return child;
  };
  return { made, spawn };
}

const batch = (...lines: string[]) => [`${lines.join('\n')}\n`];

test('IprouteBatch: failed lines are numbered within their batch though iproute2 counts over its life', async () => {
  const { made, spawn } = fakes({ fails: /bad/ });
  const b = new IprouteBatch('ip', { netns: 'ns1', spawn });
  const one = await b.run(batch('neigh replace a', 'neigh replace bad1', 'neigh replace c'));
  assert.deepEqual(one, { failed: [{ line: 2, error: 'RTNETLINK answers: File exists' }], lost: null, lines: 3 });
  // In pieces, as BatchInput hands them out.
  const two = await b.run(['neigh replace bad2\nneigh replace e\n', 'neigh replace f\nneigh replace bad3\n']);
  assert.deepEqual(
    two.failed.map((f) => f.line),
    [1, 4],
  );
  assert.equal(two.lines, 4);
  assert.equal(made.length, 1, 'one process for both batches');
  assert.deepEqual(made[0]?.args, ['-n', 'ns1', '-force', '-batch', '-']);
  assert.deepEqual(made[0]?.child.lines, [
    'neigh replace a',
    'neigh replace bad1',
    'neigh replace c',
    SENTINEL,
    'neigh replace bad2',
    'neigh replace e',
    'neigh replace f',
    'neigh replace bad3',
    SENTINEL,
  ]);
  b.close();
  assert.equal(made[0]?.child.ended, true, 'closing ends its input');
});

test('IprouteBatch: batches run one at a time, in call order', async () => {
  const { made, spawn } = fakes({ fails: /x2/ });
  const b = new IprouteBatch('bridge', { spawn });
  const [r1, r2, r3] = await Promise.all([b.run(batch('x1', 'x2')), b.run(batch('y1')), b.run(batch('x2'))]);
  assert.deepEqual(
    r1?.failed.map((f) => f.line),
    [2],
  );
  assert.deepEqual(r2?.failed, []);
  assert.deepEqual(
    r3?.failed.map((f) => f.line),
    [1],
  );
  assert.deepEqual(made[0]?.child.lines, ['x1', 'x2', SENTINEL, 'y1', SENTINEL, 'x2', SENTINEL]);
  b.close();
});

test('IprouteBatch: a process that dies during a batch loses it; the next batch gets a new process', async () => {
  const { made, spawn } = fakes({ dies: /boom/ });
  const b = new IprouteBatch('ip', { spawn });
  const r = await b.run(batch('a', 'boom', 'c'));
  assert.match(r.lost ?? '', /ip batch process killed by SIGSEGV/);
  const next = await b.run(batch('d'));
  assert.deepEqual(next, { failed: [], lost: null, lines: 1 });
  assert.equal(made.length, 2);
  assert.deepEqual(made[1]?.child.lines, ['d', SENTINEL], 'the new process numbers from 1');
  // Dead while idle: found out at the next batch.
  made[1]?.child.kill('SIGKILL');
  await new Promise((r) => setImmediate(r));
  assert.equal((await b.run(batch('e'))).lost, null);
  assert.equal(made.length, 3);
  b.close();
});

test('IprouteBatch: a hung batch times out and its process is killed; one that cannot start is lost', async () => {
  const { made, spawn } = fakes({ hangs: /stuck/ });
  const b = new IprouteBatch('ip', { spawn, timeoutMs: 50 });
  const r = await b.run(batch('stuck'));
  assert.match(r.lost ?? '', /timed out after 50 ms/);
  assert.equal(made[0]?.child.killed, 'SIGKILL');
  assert.equal((await b.run(batch('fine'))).lost, null);
  b.close();

  const broken = new IprouteBatch('ip', {
    spawn: () => {
      const c = new FakeIproute({ hangs: /./ });
      setImmediate(() => c.emit('error', new Error('spawn ip ENOENT')));
      return c;
    },
  });
  assert.match((await broken.run(batch('a'))).lost ?? '', /failed: spawn ip ENOENT/);
});

test('IprouteBatch: restart gives the next batch a fresh process, after the running one', async () => {
  const { made, spawn } = fakes({ slowMs: 30 });
  const b = new IprouteBatch('bridge', { spawn });
  await b.run(batch('a'));
  const running = b.run(batch('b'));
  await new Promise((r) => setTimeout(r, 10));
  b.restart();
  assert.equal((await running).lost, null, 'the batch running when asked finishes in its process');
  assert.equal(made.length, 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(made[0]?.child.ended, true);
  await b.run(batch('c'));
  assert.equal(made.length, 2);
  assert.deepEqual(made[1]?.child.lines, ['c', SENTINEL]);
  assert.equal(b.spawned, 2);
  // Asked before a queued batch starts, that batch gets the new process.
  const queued = b.run(batch('d'));
  b.restart();
  await queued;
  assert.equal(made.length, 3);
  b.close();
});

test('IprouteBatch: input that cannot be made loses the batch and kills the process', async () => {
  const { made, spawn } = fakes();
  const b = new IprouteBatch('ip', { spawn });
  const r = await b.run(
    (function* () {
      yield 'a\n';
      throw new Error('bad step');
    })(),
  );
  assert.match(r.lost ?? '', /input failed: bad step/);
  assert.equal(made[0]?.child.killed, 'SIGKILL');
  b.close();
});

test('OneShotBatch: a process per batch through the Runner, failures from its stderr', async () => {
  const calls: { cmd: string; args: string[]; input: string }[] = [];
  const runner = async (cmd: string, args: string[], o: RunOptions = {}) => {
    const input = typeof o.input === 'string' ? o.input : [...(o.input ?? [])].join('');
    calls.push({ cmd, args, input });
    return { code: 1, stdout: '', stderr: 'Error: nope\nCommand failed -:2\n' };
  };
  const b = new OneShotBatch('bridge', runner, 'ns2');
  const r = await b.run(batch('a', 'b'));
  assert.deepEqual(r, { failed: [{ line: 2, error: 'Error: nope' }], lost: null, lines: 2 });
  assert.deepEqual(calls, [{ cmd: 'bridge', args: ['-n', 'ns2', '-force', '-batch', '-'], input: 'a\nb\n' }]);
  const down = new OneShotBatch('ip', async () => {
    throw new Error('ip: spawn ENOENT');
  });
  assert.equal((await down.run(batch('a'))).lost, 'ip: spawn ENOENT');
});
