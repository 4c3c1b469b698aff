// `weft server`: opens the store (migrating it), bootstraps the admin token
// from WEFT_ADMIN_TOKEN, serves the API, and shuts down cleanly on signals.
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../api/app.js';
import { createCtx } from '../core/context.js';
import { ensureAdminToken } from '../core/tokens.js';
import { invalid } from '../model/errors.js';
import type { PlacementPolicy } from '../model/types.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';

export interface ServerOptions {
  db: string;
  api: string;
  placement: PlacementPolicy;
  cpuOvercommit: number;
  adminToken?: string | undefined;
  logLevel: string;
}

export interface RunningServer {
  app: FastifyInstance;
  store: Store;
  /** The address the API actually listens on (port 0 resolved). */
  apiUrl: string;
  close(): Promise<void>;
}

export function parseListen(field: string, value: string, defaultPort: number): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+))?(?::(\d+))?$/.exec(value);
  if (!m) throw invalid(field, value, 'must be HOST:PORT, HOST, or :PORT (IPv6 as [::1]:PORT)');
  const host = m[1] ?? m[2] ?? '127.0.0.1';
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port > 65535) throw invalid(field, value, 'port must be 0..65535');
  return { host, port };
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const listen = parseListen('api', o.api, 8080);
  const store = await openStore(o.db);
  try {
    const ctx = createCtx(store, { settings: { placement: { policy: o.placement, cpuOvercommit: o.cpuOvercommit } } });
    if (o.adminToken) await ensureAdminToken(ctx, o.adminToken);
    const app = await buildApi(ctx, { logger: o.logLevel === 'silent' ? false : { level: o.logLevel } });
    await app.listen({ host: listen.host, port: listen.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : listen.port;
    const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
    return {
      app,
      store,
      apiUrl: `http://${host}:${port}`,
      async close() {
        await app.close();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}
