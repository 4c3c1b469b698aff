// `weft console INSTANCE`: an interactive serial console through the API's
// WebSocket (GET /v1/instances/{id}/console). The terminal is put in raw
// mode while attached; Ctrl-] detaches (as telnet and virsh console do).
// Errors before the upgrade are the API's own (WeftError, so exit codes
// follow the CLI's: 4 not found, 3 unreachable, 1 otherwise).
import WebSocket from 'ws';
import { type ErrorCode, WeftError } from '../model/errors.js';

/** Ctrl-]: detaches from the console. */
export const ESCAPE = 0x1d;
/** The close code of a session the server ended (server/console-ws.ts). */
const ENDED = 4000;

export interface ConsoleOptions {
  base: string;
  token: string | undefined;
  ca?: Buffer | undefined;
  ref: string;
  force: boolean;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Attaches until detached (0), or until the server ends the session (1, its reason on stderr). */
export function runConsole(o: ConsoleOptions): Promise<number> {
  const url = new URL(`/v1/instances/${encodeURIComponent(o.ref)}/console${o.force ? '?force=1' : ''}`, o.base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WeftError('E_INVALID_ARG', `unsupported protocol ${url.protocol} (http: or https:)`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers: o.token ? { authorization: `Bearer ${o.token}` } : {},
      ...(o.ca ? { ca: o.ca } : {}),
      maxPayload: 1024 * 1024,
    });
    let attached = false;
    let detached = false;
    const raw = o.stdin.isTTY === true;
    const restore = () => {
      if (raw) o.stdin.setRawMode(false);
      o.stdin.pause();
      o.stdin.off('data', onInput);
    };
    const onInput = (b: Buffer) => {
      const at = b.indexOf(ESCAPE);
      if (at >= 0) {
        if (at > 0) ws.send(b.subarray(0, at));
        detached = true;
        ws.close(1000, 'detached');
        return;
      }
      ws.send(b);
    };
    // Installed before anything is printed: a signal that comes right after "Connected" still detaches cleanly.
    const stop = () => {
      detached = true;
      if (attached) ws.close(1000, 'detached');
      else {
        ws.terminate();
        resolve(0);
      }
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d.slice(0, 4096)));
      res.on('end', () => {
        let d: { code?: string; message?: string; field?: string } = {};
        try {
          d = JSON.parse(body);
        } catch {}
        reject(new WeftError((d.code as ErrorCode) ?? 'E_INTERNAL', d.message ?? `HTTP ${res.statusCode}`, d.field));
      });
    });
    ws.on('error', (e: NodeJS.ErrnoException) => {
      if (!attached && !detached)
        reject(new WeftError('E_UNAVAILABLE', `cannot reach the API at ${url.origin.replace(/^ws/, 'http')}: ${e.code ?? e.message}`));
    });
    ws.on('open', () => {
      attached = true;
      o.stderr.write(`Connected to the console of ${o.ref} (detach with Ctrl-])\r\n`);
      if (raw) o.stdin.setRawMode(true);
      o.stdin.on('data', onInput);
      o.stdin.resume();
    });
    ws.on('message', (data: Buffer) => o.stdout.write(data));
    ws.on('close', (code, reason) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (!attached) return;
      restore();
      if (detached) {
        o.stderr.write('\r\nDetached.\r\n');
        resolve(0);
      } else {
        o.stderr.write(`\r\nConsole closed: ${code === ENDED ? reason.toString() : `connection closed (${code})`}\r\n`);
        resolve(1);
      }
    });
  });
}
