// The real VmHost: one `virsh -q -c <uri>` kept running for the agent's life,
// given one command at a time on its stdin. One connection, not a virsh per
// command: libvirt's test driver (test:///default, which the integration
// tests use) keeps its domains only as long as the connection that made
// them, and a connection per command would cost a handshake each.
//
// Interactive virsh with a pipe for stdin still runs readline: it prints its
// prompt (`virsh # `) and echoes every line it reads on stdout, and `-q`
// drops the newline `echo` would end its words with. Its stdout and stderr
// are two pipes that node may read in either order. So each command is
// followed by two markers, `echo <m>` (stdout) and `echo --err <m>` (stderr,
// as `error: <m>`): the command's output is the stdout before the first, its
// errors the stderr lines before the second, and it is done when both came.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalid, WeftError } from '../../model/errors.js';
import { checkDomainName, checkDomainXml, checkMigrationUri, type DomainState, domainError, isWeftDomain, type VmHost } from './vm-host.js';

export interface VirshOptions {
  /** The libvirt connection: `qemu:///system` on a hypervisor, `test:///default` in tests. */
  uri: string;
  /** Where define's XML is written for virsh to read (a file per call, removed after it). */
  dir: string;
  /** A command not done in this long fails, and the process is killed (default 30 s). */
  timeoutMs?: number;
  /** How long a live migration may take before it is given up (default 10 min; libvirt then cancels it). */
  migrateTimeoutMs?: number;
  /** How long stop() waits for a guest to shut down before it pulls the plug (default 60 s). */
  stopTimeoutMs?: number;
  /** How often stop() looks whether the guest is down (default 500 ms). */
  pollMs?: number;
  /** The virsh binary (default `virsh`, on PATH). */
  virsh?: string;
}

interface Command {
  line: string;
  /** The words written after it: its stdout marker's and its stderr marker's. */
  mark: string;
  /** stdout seen while it ran (the prompt and the echo of its line included). */
  out: string;
  outDone: boolean;
  errDone: boolean;
  /** stderr lines (not the marker). */
  errors: string[];
  settle: (r: { ok: true; out: string } | { ok: false; why: string }) => void;
}

interface Proc {
  child: ChildProcess;
  out: string;
  err: string;
  /** The echo of the previous command's stderr marker line, which starts the next command's stdout. */
  pendingEcho: string;
  /** stderr lines when no command ran (connection errors at start), for the message if it dies. */
  stray: string[];
  gone: string | null;
  closed: Promise<void>;
}

const PROMPT = /^virsh [#>] /;
const TRAILING_PROMPT = /virsh [#>] $/;

/** One argument as virsh's own command parser reads it: single-quoted, a `'` as `'\''` (as in sh). */
export function quoteArg(arg: string): string {
  // A newline would end the command; a tab would have readline complete; NUL ends C strings.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (/[\u0000-\u001f\u007f]/.test(arg)) throw invalid('virsh argument', arg, 'no control characters (newline, tab...)');
  return `'${arg.replace(/'/g, "'\\''")}'`;
}

export class VirshHost implements VmHost {
  private proc: Proc | null = null;
  /** The command in flight, and the process it runs in. */
  private cur: Command | null = null;
  private curProc: Proc | null = null;
  /** Commands run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Each domain's operations, one at a time (an operation is several commands). */
  private readonly domainQueues = new Map<string, Promise<void>>();
  private seq = 0;
  /** Per host: a domain's XML cannot forge a marker it cannot guess. */
  private readonly nonce = randomBytes(6).toString('hex');
  private readonly timeoutMs: number;
  /** virsh processes started so far. */
  spawned = 0;

  constructor(private readonly o: VirshOptions) {
    this.timeoutMs = o.timeoutMs ?? 30_000;
  }

  /** The virsh process's id, while one runs. */
  get pid(): number | undefined {
    return this.proc && !this.proc.gone ? this.proc.child.pid : undefined;
  }

  /**
   * Runs one virsh command (its words, each quoted for virsh) after those
   * before it, and gives its output. Fails (E_DATAPLANE) when virsh says
   * `error:`, or its process dies or does not answer in time (the next
   * command gets a new process). The seam's operations are made of these;
   * tests use it to read what the seam does not report.
   */
  run(args: string[], timeoutMs = this.timeoutMs): Promise<string> {
    let line: string;
    try {
      line = args.map(quoteArg).join(' ');
    } catch (e) {
      return Promise.reject(e);
    }
    const r = this.queue.then(() => this.runNow(line, timeoutMs));
    this.queue = r.catch(() => {});
    return r;
  }

  async define(name: string, domainXml: string): Promise<void> {
    checkDomainXml(name, domainXml);
    return this.inOrder(name, () => this.defineNow(name, domainXml));
  }

  private async defineNow(name: string, domainXml: string): Promise<void> {
    await mkdir(this.o.dir, { recursive: true }).catch((e: Error) => {
      throw domainError(name, `define: ${e.message}`, e);
    });
    const file = join(this.o.dir, `.weft-define-${this.nonce}-${++this.seq}.xml`);
    try {
      try {
        await writeFile(file, domainXml, { mode: 0o600 });
      } catch (e) {
        throw domainError(name, `define: writing its XML for virsh: ${(e as Error).message}`, e);
      }
      await this.domainRun(name, ['define', file]);
    } finally {
      await rm(file, { force: true });
    }
  }

  async start(name: string): Promise<void> {
    checkDomainName(name);
    return this.inOrder(name, () => this.startNow(name));
  }

  private async startNow(name: string): Promise<void> {
    if ((await this.stateOf(name)) === 'running') return;
    // Unknown: virsh says so, in its words.
    await this.domainRun(name, ['start', name]);
  }

  async stop(name: string): Promise<void> {
    checkDomainName(name);
    return this.inOrder(name, () => this.stopNow(name));
  }

  private async stopNow(name: string): Promise<void> {
    const s = await this.stateOf(name);
    if (s === 'stopped') return;
    if (s === undefined) {
      await this.domainRun(name, ['domstate', name]);
      throw domainError(name, 'not defined');
    }
    try {
      await this.domainRun(name, ['shutdown', name]);
    } catch {
      // The guest cannot be asked (libvirt refused the request): the plug, at once.
      await this.destroy(name);
      return;
    }
    const end = Date.now() + (this.o.stopTimeoutMs ?? 60_000);
    while (Date.now() < end) {
      if ((await this.stateOf(name)) !== 'running') return;
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 500));
    }
    await this.destroy(name);
  }

  async migrate(name: string, toUri: string): Promise<void> {
    checkDomainName(name);
    checkMigrationUri(toUri);
    return this.inOrder(name, async () => {
      const s = await this.stateOf(name);
      if (s !== 'running') throw domainError(name, `migrate: the domain is ${s === undefined ? 'not defined' : 'not running'} here`);
      // Live, defined on the destination, undefined here once it runs there; the disk stays where both see it.
      await this.domainRunFor(name, ['migrate', '--live', '--persistent', '--undefinesource', name, toUri], this.o.migrateTimeoutMs ?? 600_000);
    });
  }

  async undefine(name: string): Promise<void> {
    checkDomainName(name);
    return this.inOrder(name, () => this.undefineNow(name));
  }

  private async undefineNow(name: string): Promise<void> {
    const s = await this.stateOf(name);
    if (s === undefined) return;
    // Undefined while running, a domain would go on as a transient one.
    if (s === 'running') await this.destroy(name);
    // Its managed-save image and snapshot metadata go with it; the NVRAM too,
    // except on the test driver, which refuses that flag.
    const flags = ['--managed-save', '--snapshots-metadata', ...(this.o.uri.startsWith('test:') ? [] : ['--nvram'])];
    await this.domainRun(name, ['undefine', ...flags, name]);
  }

  async list(): Promise<Map<string, DomainState>> {
    const all = await this.names(['list', '--all', '--name']);
    const active = new Set(await this.names(['list', '--name']));
    const out = new Map<string, DomainState>();
    for (const n of all) if (isWeftDomain(n)) out.set(n, active.has(n) ? 'running' : 'stopped');
    return out;
  }

  /** Ends the virsh process (at the end of its input; killed if it lingers). A later call starts another. */
  async close(): Promise<void> {
    await this.queue;
    const p = this.proc;
    this.proc = null;
    if (!p || p.gone) return;
    p.child.stdin?.end();
    const t = setTimeout(() => p.child.kill('SIGKILL'), 2000);
    await p.closed;
    clearTimeout(t);
  }

  /**
   * Runs `f` after the calls on domain `name` made before it: a stop waiting
   * for its guest holds up that domain's calls only, not the others'.
   */
  private inOrder<T>(name: string, f: () => Promise<T>): Promise<T> {
    const r = (this.domainQueues.get(name) ?? Promise.resolve()).then(f);
    const tail = r.then(
      () => {},
      () => {},
    );
    this.domainQueues.set(name, tail);
    tail.then(() => {
      if (this.domainQueues.get(name) === tail) this.domainQueues.delete(name);
    });
    return r;
  }

  /** Pulls the plug; a domain that stopped meanwhile is fine. */
  private async destroy(name: string): Promise<void> {
    try {
      await this.domainRun(name, ['destroy', name]);
    } catch (e) {
      if ((await this.stateOf(name)) === 'running') throw e;
    }
  }

  private async stateOf(name: string): Promise<DomainState | undefined> {
    return (await this.list()).get(name);
  }

  private async names(args: string[]): Promise<string[]> {
    return (await this.run(args))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  }

  private domainRun(name: string, args: string[]): Promise<string> {
    return this.domainRunFor(name, args, this.timeoutMs);
  }

  private async domainRunFor(name: string, args: string[], timeoutMs: number): Promise<string> {
    try {
      return await this.run(args, timeoutMs);
    } catch (e) {
      if (e instanceof WeftError && e.code === 'E_DATAPLANE') throw domainError(name, e.message, e);
      throw e;
    }
  }

  private spawnVirsh(): Proc {
    const child = spawn(this.o.virsh ?? 'virsh', ['-q', '-c', this.o.uri], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // English messages; no user's inputrc or terminal for readline to act on.
      env: { ...process.env, LC_ALL: 'C', INPUTRC: '/dev/null', TERM: 'dumb' },
    });
    this.spawned++;
    let closed: () => void = () => {};
    const p: Proc = { child, out: '', err: '', pendingEcho: '', stray: [], gone: null, closed: new Promise((r) => (closed = r)) };
    const gone = (why: string) => {
      if (p.gone) return;
      p.gone = why;
      if (this.proc === p) this.proc = null;
      const c = this.cur;
      if (c && this.curProc === p) {
        const said = [...p.stray, ...c.errors].join('; ');
        c.settle({ ok: false, why: `virsh (${this.o.uri}) ${why}${said ? `: ${said}` : ''}` });
      }
    };
    child.once('error', (e) => {
      gone(`failed: ${e.message}`);
      closed();
    });
    // After its pipes are drained: what it wrote before it died is read first.
    child.once('close', (code, signal) => {
      gone(signal ? `was killed by ${signal}` : `exited with code ${code}`);
      closed();
    });
    child.stdin?.on('error', () => {});
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (t: string) => this.stdout(p, t));
    child.stderr?.on('data', (t: string) => this.stderr(p, t));
    idle(child, true);
    return p;
  }

  private stdout(p: Proc, text: string): void {
    p.out += text;
    const c = this.curProc === p ? this.cur : null;
    if (!c || c.outDone) return;
    // The marker as echo's output, not as the echo of its command line (`echo <m>`).
    let at = p.out.indexOf(c.mark);
    while (at !== -1 && p.out.slice(Math.max(0, at - 5), at) === 'echo ') at = p.out.indexOf(c.mark, at + 1);
    if (at === -1) return;
    c.out = p.out.slice(0, at);
    p.out = p.out.slice(at + c.mark.length);
    c.outDone = true;
    this.maybeDone(c);
  }

  private stderr(p: Proc, text: string): void {
    const lines = (p.err + text).split('\n');
    p.err = lines.pop() ?? '';
    const c = this.curProc === p ? this.cur : null;
    for (const raw of lines) {
      const l = raw.trimEnd();
      if (!c || c.errDone) {
        if (l) p.stray.push(l);
        continue;
      }
      if (l === `error: ${c.mark}`) c.errDone = true;
      else if (l) c.errors.push(l);
    }
    if (c) this.maybeDone(c);
  }

  private maybeDone(c: Command): void {
    if (!c.outDone || !c.errDone) return;
    // virsh writes `error: …` for a failure; other lines (a parse error's context) go into the message.
    if (c.errors.some((l) => l.startsWith('error:'))) c.settle({ ok: false, why: c.errors.join('; ') });
    else c.settle({ ok: true, out: c.out });
  }

  private async runNow(line: string, timeoutMs: number): Promise<string> {
    let p = this.proc;
    if (!p) {
      p = this.spawnVirsh();
      this.proc = p;
    }
    const proc = p;
    const mark = `__weft_${this.nonce}_${++this.seq}__`;
    const verb = line.slice(1, line.indexOf("'", 1));
    const result = await new Promise<{ ok: true; out: string } | { ok: false; why: string }>((settle) => {
      let timer: NodeJS.Timeout | undefined;
      const c: Command = {
        line,
        mark,
        out: '',
        outDone: false,
        errDone: false,
        errors: [],
        settle: (r) => {
          if (this.cur !== c) return;
          clearTimeout(timer);
          this.cur = null;
          this.curProc = null;
          if (!proc.gone) idle(proc.child, true);
          settle(r);
        },
      };
      this.cur = c;
      this.curProc = proc;
      if (proc.gone) {
        c.settle({ ok: false, why: `virsh (${this.o.uri}) ${proc.gone}` });
        return;
      }
      idle(proc.child, false);
      timer = setTimeout(() => {
        c.settle({ ok: false, why: `no answer in ${timeoutMs} ms (virsh is killed; the next command starts another)` });
        // Its answer may still come: the process is not trusted with the next command.
        if (this.proc === proc) this.proc = null;
        proc.child.kill('SIGKILL');
      }, timeoutMs);
      proc.stray = [];
      proc.child.stdin?.write(`${line}\necho ${mark}\necho --err ${mark}\n`);
    });
    const echoed = proc.pendingEcho;
    proc.pendingEcho = `echo --err ${mark}\n`;
    if (!result.ok) throw new WeftError('E_DATAPLANE', `virsh ${verb}: ${result.why}`);
    return cleanOutput(result.out, line, echoed);
  }
}

/**
 * A command's own output from what virsh wrote on stdout while it ran: the
 * newline some versions end the last marker with, readline's prompts and its
 * echo of the previous command's stderr marker line and of this command's
 * line go; so does the prompt before this command's marker line.
 */
export function cleanOutput(raw: string, line: string, pendingEcho: string): string {
  let s = raw.replace(/^\n/, '').replace(PROMPT, '');
  if (pendingEcho && s.startsWith(pendingEcho)) s = s.slice(pendingEcho.length).replace(PROMPT, '');
  if (s.startsWith(`${line}\n`)) s = s.slice(line.length + 1);
  const echoAt = s.lastIndexOf('echo __weft_');
  if (echoAt !== -1 && /^echo __weft_\w+__\n$/.test(s.slice(echoAt))) s = s.slice(0, echoAt);
  return s.replace(TRAILING_PROMPT, '');
}

type Refable = { ref?: () => void; unref?: () => void } | null | undefined;

/** An idle virsh does not keep node running (an agent, a test that forgot close()); a command in flight does. */
function idle(c: ChildProcess, yes: boolean): void {
  for (const s of [c, c.stdin, c.stdout, c.stderr] as Refable[]) (yes ? s?.unref : s?.ref)?.call(s);
}
