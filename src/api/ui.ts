// The web console's files under /ui/: the bundle scripts/build-web.ts wrote
// (index.html and content-hashed assets), read into memory once, so a
// request can only ever name one of them (no path reaches the file system).
// Served with a strict Content-Security-Policy: no inline script or style,
// nothing from another origin.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';

/** Everything the page may load or connect to is this origin's; it may not be framed. */
export const UI_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
};

interface UiFile {
  body: Buffer;
  type: string;
  etag: string;
  /** Content-hashed names never change: cached for a year; index.html is revalidated every time. */
  immutable: boolean;
}

/**
 * Where the console's bundle is: beside the compiled server (dist/current/web,
 * as the Debian package has it), or, running src/ through tsx in a checkout,
 * the checkout's last build. Null when neither has one.
 */
export function defaultUiDir(): string | null {
  for (const d of [join(import.meta.dirname, '..', 'web'), join(import.meta.dirname, '..', '..', 'dist', 'current', 'web')])
    if (existsSync(join(d, 'index.html'))) return d;
  return null;
}

function load(dir: string): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const type = TYPES[extname(name)];
    if (!type || !statSync(p).isFile()) continue;
    const body = readFileSync(p);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    files.set(name, { body, type, etag, immutable: /-[A-Z0-9]{8}\.\w+$/.test(name) });
  }
  return files;
}

/** GET /ui/ and /ui/<file>: the bundle in `dir`, or (null) a 404 that says how to build it. */
export function serveUi(app: FastifyInstance, dir: string | null): void {
  const files = dir ? load(dir) : new Map<string, UiFile>();
  const notFound = (url: string) => ({
    code: 'E_NOT_FOUND',
    message: files.size === 0 ? 'the web console is not built into this server: run npm run build' : `no such file of the web console: ${url}`,
  });
  app.get('/ui', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ui/', 301));
  app.get('/ui/*', { schema: { hide: true } }, async (req, reply) => {
    const name = (req.params as { '*': string })['*'] || 'index.html';
    const f = files.get(name);
    reply
      .header('content-security-policy', UI_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin');
    if (!f) {
      req.errorCode = 'E_NOT_FOUND';
      return reply
        .status(404)
        .header('cache-control', 'no-store')
        .send(notFound(req.url.split('?')[0] as string));
    }
    reply.header('etag', f.etag).header('cache-control', f.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (req.headers['if-none-match'] === f.etag) return reply.status(304).send();
    return reply.type(f.type).send(f.body);
  });
}
