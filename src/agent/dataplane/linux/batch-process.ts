// iproute2 in batch mode kept running for the dataplane's life (`ip -force
// -batch -`, `bridge -force -batch -`): a batch is lines written to its stdin,
// ended by a sentinel line that always fails, so the sentinel's `Command
// failed -:N` on stderr says the batch is done and which lines before it failed.
import { spawn as nodeSpawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Runner } from '../../../sys/exec.js';

/** What one batch did. */
export interface BatchOutcome {
  /** Lines of the batch (1-based within it) that failed, with iproute2's words for why. */
  failed: { line: number; error: string }[];
  /**
   * Set when the process died, hung or could not start during the batch:
   * then every line not in `failed` may or may not have run and counts as
   * failed with this error (the agent re-reads the kernel and retries).
   */
  lost: string | null;
  /** Lines the batch had. */
  lines: number;
}

/** One iproute2 tool that takes batches of lines, one batch at a time. */
export interface BatchProcess {
  /**
   * Runs the lines (pieces of whole lines, each ending in a newline; none
   * empty). Batches run one at a time, in call order. Never rejects: a
   * failure is in the outcome.
   */
  run(pieces: Iterable<string>): Promise<BatchOutcome>;
  /**
   * The next batch gets a fresh process: iproute2 caches interface names
   * to indexes, and an interface deleted and made again under the same
   * name has a new index. A batch running finishes first.
   */
  restart(): void;
  /** Ends the process (a later `run` starts another). */
  close(): void;
}

/** The little of a child process this module uses (a fake one in unit tests). */
export interface BatchChild {
  readonly pid?: number;
  readonly stdin: Writable;
  readonly stderr: Readable;
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'exit', f: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  once(event: 'error', f: (e: Error) => void): unknown;
  unref?(): void;
}

export type BatchSpawn = (cmd: string, args: string[]) => BatchChild;

const realSpawn: BatchSpawn = (cmd, args) => nodeSpawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });

/** Always fails, harmlessly and before any netlink request: an unknown object. */
export const SENTINEL = 'weft-batch-end';
const FAILED = /^Command failed -:(\d+)$/;

export interface IprouteBatchOptions {
  /** Run in this named network namespace (`-n`). */
  netns?: string;
  spawn?: BatchSpawn;
  /** A batch not finished after this long kills the process (default 120 s: a full sync of 20k lines takes well under 1 s). */
  timeoutMs?: number;
}

interface Running {
  /** The process's line number before the batch's first line. */
  base: number;
  lines: number;
  /** The sentinel's line number, once written. */
  sentinel: number;
  failed: { line: number; error: string }[];
  /** Error lines since the last `Command failed`. */
  context: string[];
  done: (lost: string | null) => void;
}

interface Proc {
  child: BatchChild;
  /** Lines written to it so far (iproute2 numbers them over its whole life). */
  written: number;
  rest: string;
  exited: string | null;
}

export class IprouteBatch implements BatchProcess {
  private proc: Proc | null = null;
  /** The batch running, and the process it runs in. */
  private cur: Running | null = null;
  private curProc: Proc | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private stale = false;
  private readonly spawn: BatchSpawn;
  private readonly args: string[];
  /** Processes started so far (tests, metrics). */
  spawned = 0;

  /** The running process's id, if one runs. */
  get pid(): number | undefined {
    return this.proc?.child.pid;
  }

  constructor(
    readonly tool: 'ip' | 'bridge',
    private readonly o: IprouteBatchOptions = {},
  ) {
    this.spawn = o.spawn ?? realSpawn;
    this.args = [...(o.netns ? ['-n', o.netns] : []), '-force', '-batch', '-'];
  }

  run(pieces: Iterable<string>): Promise<BatchOutcome> {
    const r = this.queue.then(() => this.runNow(pieces));
    this.queue = r;
    return r;
  }

  restart(): void {
    if (this.cur) this.stale = true;
    else this.end();
  }

  close(): void {
    this.end();
  }

  private end(): void {
    this.stale = false;
    const p = this.proc;
    this.proc = null;
    if (!p || p.exited) return;
    // At the end of its input iproute2 exits by itself; a stuck one is killed.
    p.child.stdin.end();
    const t = setTimeout(() => p.child.kill('SIGKILL'), 2000);
    t.unref();
    p.child.once('exit', () => clearTimeout(t));
  }

  private start(): Proc {
    const child = this.spawn(this.tool, this.args);
    this.spawned++;
    const p: Proc = { child, written: 0, rest: '', exited: null };
    const gone = (why: string) => {
      if (p.exited) return;
      p.exited = why;
      if (this.proc === p) this.proc = null;
      if (this.cur && this.curProc === p) this.cur.done(`${this.tool} batch process ${why}`);
    };
    child.once('error', (e) => gone(`failed: ${e.message}`));
    child.once('exit', (code, signal) => gone(signal ? `killed by ${signal}` : `exited with code ${code}`));
    child.stdin.on('error', () => {});
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (t: string) => this.stderr(p, t));
    // An idle agent's batch processes do not keep it alive; while a batch runs they do.
    child.unref?.();
    unref(child);
    return p;
  }

  private stderr(p: Proc, text: string): void {
    const lines = (p.rest + text).split('\n');
    p.rest = lines.pop() ?? '';
    const b = this.curProc === p ? this.cur : null;
    for (const l of lines) {
      if (!b) continue;
      const m = FAILED.exec(l.trim());
      if (!m) {
        if (l.trim()) b.context.push(l.trim());
        continue;
      }
      const n = Number(m[1]);
      const error = b.context.join('; ') || 'failed';
      b.context = [];
      if (n === b.sentinel) b.done(null);
      else if (n > b.base && n <= b.base + b.lines) b.failed.push({ line: n - b.base, error });
    }
  }

  private async runNow(pieces: Iterable<string>): Promise<BatchOutcome> {
    if (this.stale) this.end();
    let p = this.proc;
    if (!p) {
      try {
        p = this.start();
      } catch (e) {
        return { failed: [], lost: `${this.tool}: ${(e as Error).message}`, lines: countAll(pieces) };
      }
      this.proc = p;
    }
    const proc = p;
    let finish: (lost: string | null) => void = () => {};
    const finished = new Promise<string | null>((resolve) => {
      finish = resolve;
    });
    const b: Running = { base: proc.written, lines: 0, sentinel: -1, failed: [], context: [], done: (lost) => finish(lost) };
    this.cur = b;
    this.curProc = proc;
    ref(proc.child);
    const timer = setTimeout(() => {
      b.done(`${this.tool} batch timed out after ${this.o.timeoutMs ?? 120_000} ms`);
      proc.child.kill('SIGKILL');
    }, this.o.timeoutMs ?? 120_000);
    let lost: string | null;
    try {
      // Written as the tool reads it, so a big batch's text is never all in memory.
      // Each piece is written once the next is made, the last with the sentinel: a delta's batch is one write.
      const writing = (async () => {
        let held: string | null = null;
        for (const piece of pieces) {
          if (proc.exited) return;
          b.lines += countLines(piece);
          if (held !== null && !proc.child.stdin.write(held)) await drained(proc.child.stdin, finished);
          held = piece;
        }
        if (proc.exited) return;
        b.sentinel = b.base + b.lines + 1;
        proc.written = b.sentinel;
        proc.child.stdin.write(`${held ?? ''}${SENTINEL}\n`);
      })();
      // A process that dies mid-input ends the batch at once; the writer then stops by itself.
      writing.catch(() => {});
      lost = await Promise.race([finished, writing.then(() => finished)]);
    } catch (e) {
      // The input could not be made: the process has part of it; start afresh.
      lost = `${this.tool} batch input failed: ${(e as Error).message}`;
      proc.child.kill('SIGKILL');
    } finally {
      clearTimeout(timer);
      this.cur = null;
      this.curProc = null;
      if (!proc.exited) unref(proc.child);
    }
    if (lost !== null && this.proc === proc) {
      // A process that lost a batch is not trusted with the next one.
      this.proc = null;
      if (!proc.exited) proc.child.kill('SIGKILL');
    }
    if (this.stale) this.end();
    return { failed: b.failed, lost, lines: b.lines };
  }
}

/** The failed lines (as iproute2 numbers them) and their errors, from a whole `-force` batch's stderr. */
export function parseFailed(stderr: string): { line: number; error: string }[] {
  const failed: { line: number; error: string }[] = [];
  let context: string[] = [];
  for (const t of stderr.split('\n')) {
    const m = FAILED.exec(t.trim());
    if (!m) {
      if (t.trim()) context.push(t.trim());
      continue;
    }
    failed.push({ line: Number(m[1]), error: context.join('; ') || 'failed' });
    context = [];
  }
  return failed;
}

function countLines(piece: string): number {
  let n = 0;
  for (let i = piece.indexOf('\n'); i !== -1; i = piece.indexOf('\n', i + 1)) n++;
  return n;
}

function countAll(pieces: Iterable<string>): number {
  let n = 0;
  for (const p of pieces) n += countLines(p);
  return n;
}

/** Waits until `to` drains, or the batch ends (the process died). */
function drained(to: Writable, finished: Promise<unknown>): Promise<unknown> {
  let done = () => {};
  const d = new Promise<void>((resolve) => {
    done = resolve;
    to.once('drain', done);
  });
  return Promise.race([d, finished]).finally(() => to.off('drain', done));
}

type Refable = { ref?: () => void; unref?: () => void };

function ref(c: BatchChild): void {
  (c.stdin as Refable).ref?.();
  (c.stderr as Refable).ref?.();
}

function unref(c: BatchChild): void {
  (c.stdin as Refable).unref?.();
  (c.stderr as Refable).unref?.();
}

/**
 * A process per batch through a Runner (how the dataplane ran batches
 * before IprouteBatch; kept for an injected Runner in unit tests).
 */
export class OneShotBatch implements BatchProcess {
  private readonly args: string[];

  constructor(
    readonly tool: 'ip' | 'bridge',
    private readonly runner: Runner,
    netns?: string,
  ) {
    this.args = [...(netns ? ['-n', netns] : []), '-force', '-batch', '-'];
  }

  async run(pieces: Iterable<string>): Promise<BatchOutcome> {
    let lines = 0;
    const counted = (function* () {
      for (const p of pieces) {
        lines += countLines(p);
        yield p;
      }
    })();
    try {
      const r = await this.runner(this.tool, this.args, { input: counted, okCodes: [1, 2, 255] });
      const failed = parseFailed(r.stderr);
      return { failed, lost: null, lines };
    } catch (e) {
      return { failed: [], lost: (e as Error).message, lines };
    }
  }

  restart(): void {}
  close(): void {}
}
