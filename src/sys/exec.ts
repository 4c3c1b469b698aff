// Runs system commands (ip, bridge, nft, tcpdump...) for the agent and the
// lab: one injectable Runner, so planners and appliers are testable without
// a kernel, and failures become E_DATAPLANE errors naming the command.
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { WeftError } from '../model/errors.js';

export interface RunOptions {
  /** Written to the command's stdin (batches for `ip -batch -`, `nft -f -`); pieces are written as the command reads them. */
  input?: string | Iterable<string>;
  /** Run inside this named network namespace (`ip netns exec`). */
  netns?: string;
  /** Exit codes that are not failures (default: only 0). */
  okCodes?: number[];
  /** Takes stdout as it arrives (text) instead of collecting it: the result's stdout is then empty. */
  onStdout?: (text: string) => void;
  timeoutMs?: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one command to completion. Throws E_DATAPLANE (with stderr) on a failing exit code. */
export type Runner = (cmd: string, args: string[], opts?: RunOptions) => Promise<RunResult>;

export const run: Runner = (cmd, args, opts = {}) =>
  new Promise((resolve, reject) => {
    const [file, argv] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, cmd, ...args]] : [cmd, args];
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    let inputError: Error | null = null;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    const onStdout = opts.onStdout;
    if (onStdout) {
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (t: string) => onStdout(t));
    } else child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new WeftError('E_DATAPLANE', `${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (inputError) return reject(new WeftError('E_DATAPLANE', `${cmd} ${args.join(' ')}: its input failed: ${inputError.message}`));
      const r = { code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code === 0 || (code !== null && opts.okCodes?.includes(code))) resolve(r);
      else {
        const where = opts.netns ? ` (netns ${opts.netns})` : '';
        const why = signal ? `killed by ${signal}` : `exit ${code}`;
        reject(new WeftError('E_DATAPLANE', `${cmd} ${args.join(' ')}${where}: ${why}: ${r.stderr.trim().slice(0, 2000)}`));
      }
    });
    child.stdin.on('error', () => {});
    const input = opts.input ?? '';
    if (typeof input === 'string') child.stdin.end(input);
    else
      feed(child.stdin, input).catch((e: Error) => {
        // The rest of the input could not be made: stop the command rather than let it end on part of it.
        inputError = e;
        child.kill('SIGKILL');
      });
  });

/** Writes pieces to a stream, waiting for it to drain between them; stops if it breaks. */
async function feed(to: Writable, pieces: Iterable<string>): Promise<void> {
  for (const piece of pieces) {
    if (to.destroyed) return;
    if (!to.write(piece))
      await new Promise<void>((resolve) => {
        const done = () => {
          to.off('drain', done);
          to.off('close', done);
          resolve();
        };
        to.on('drain', done);
        to.on('close', done);
      });
  }
  to.end();
}
