// Runs system commands (ip, bridge, nft, tcpdump...) for the agent and the
// lab: one injectable Runner, so planners and appliers are testable without
// a kernel, and failures become E_DATAPLANE errors naming the command.
import { spawn } from 'node:child_process';
import { WeftError } from '../model/errors.js';

export interface RunOptions {
  /** Written to the command's stdin (batches for `ip -batch -`, `nft -f -`). */
  input?: string;
  /** Run inside this named network namespace (`ip netns exec`). */
  netns?: string;
  /** Exit codes that are not failures (default: only 0). */
  okCodes?: number[];
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
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new WeftError('E_DATAPLANE', `${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const r = { code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code === 0 || (code !== null && opts.okCodes?.includes(code))) resolve(r);
      else {
        const where = opts.netns ? ` (netns ${opts.netns})` : '';
        const why = signal ? `killed by ${signal}` : `exit ${code}`;
        reject(new WeftError('E_DATAPLANE', `${cmd} ${args.join(' ')}${where}: ${why}: ${r.stderr.trim().slice(0, 2000)}`));
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
