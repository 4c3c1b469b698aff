// `GET /v1/instances/{id}/console` with a WebSocket upgrade: an instance's
// serial console, relayed through this server's push stream to the
// instance's agent (stream/console.ts, agent/consoles.ts). Authenticated as
// every API request is (a bearer token; admin, or a tenant token for its own
// instances: another tenant's is "not found"), refused before the upgrade
// with the API's error body. Binary frames carry the console's bytes both
// ways; the server ends a session with close code 4000 and the reason
// (taken over, token revoked, instance deleted or moved, agent gone).
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { answerFor } from '../api/errors.js';
import type { Ctx } from '../core/context.js';
import * as inst from '../core/instances.js';
import { authenticate } from '../core/tokens.js';
import { WeftError } from '../model/errors.js';
import type { StreamServer } from '../stream/server.js';

const PATH = /^\/v1\/instances\/([^/]+)\/console$/;
/** The close code of a session the server ended (the reason says why). */
export const CONSOLE_ENDED = 4000;
/** At most this much console input in one WebSocket message. */
const MAX_FRAME = 64 * 1024;

/** The reason as a close frame takes it: at most 123 bytes. */
const closeReason = (s: string) => (Buffer.byteLength(s) <= 123 ? s : `${Buffer.from(s).subarray(0, 120).toString('utf8')}...`);

function refuse(socket: Duplex, err: unknown): void {
  const a = answerFor(err);
  const json = JSON.stringify(a.body);
  socket.end(
    `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
  );
}

/** Serves consoles on the API's HTTP server (no stream server: every console request is E_UNAVAILABLE). */
export function serveConsoles(app: FastifyInstance, ctx: Ctx, stream: StreamServer | null): { close(): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    upgrade(req, socket, head).catch((e) => refuse(socket, e));
  };
  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://weft');
    const m = PATH.exec(url.pathname);
    if (!m || req.method !== 'GET') throw new WeftError('E_NOT_FOUND', 'no such route: WebSocket upgrades are served on GET /v1/instances/{id}/console only');
    const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!auth) throw new WeftError('E_UNAUTHENTICATED', 'missing bearer token: send "Authorization: Bearer <token>"');
    const token = await authenticate(ctx, auth[1] as string);
    if (!token) throw new WeftError('E_UNAUTHENTICATED', 'unknown or revoked token');
    if (token.role !== 'admin' && token.role !== 'tenant') throw new WeftError('E_FORBIDDEN', `a ${token.role} token may not open a console`);
    let ref: string;
    try {
      ref = decodeURIComponent(m[1] as string);
    } catch {
      throw new WeftError('E_INVALID_ARG', 'invalid URL: not valid percent-encoding');
    }
    const i = await inst.getInstance(ctx, token.role === 'tenant' ? { tenantId: token.tenantId } : { tenantId: null }, ref);
    if (!stream) throw new WeftError('E_UNAVAILABLE', 'this server runs no push stream (--stream off): no agent to reach the console through');
    const force = ['1', 'true'].includes(url.searchParams.get('force') ?? '');
    // Opened before the upgrade, so a refusal (in use, agent away) is an HTTP error; output that comes meanwhile waits.
    const early: Buffer[] = [];
    let ws: import('ws').WebSocket | null = null;
    let ended: string | null = null;
    const handle = stream.openConsole({
      instanceId: i.id,
      hostId: i.hostId,
      tokenId: token.id,
      force,
      sink: {
        data: (b) => (ws ? ws.send(b) : early.push(b)),
        close: (reason) => {
          ended = reason;
          ws?.close(CONSOLE_ENDED, closeReason(reason));
        },
      },
    });
    // A handshake ws refuses (no Sec-WebSocket-Key, another version) never calls back: the session must not outlive it.
    socket.once('close', () => {
      if (!ws) handle.close('the WebSocket handshake failed');
    });
    wss.handleUpgrade(req, socket, head, (w) => {
      ws = w;
      for (const b of early.splice(0)) w.send(b);
      if (ended !== null) w.close(CONSOLE_ENDED, closeReason(ended));
      w.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
        handle.write(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));
      });
      w.on('close', () => handle.close('the console client closed'));
      w.on('error', () => w.terminate());
    });
  };
  app.server.on('upgrade', onUpgrade);
  return {
    close() {
      app.server.off('upgrade', onUpgrade);
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
