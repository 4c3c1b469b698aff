// A real API server on a loopback port for tests, on a fresh store of the
// given dialect, with an admin token; closed and dropped by close().
import type { FastifyInstance } from 'fastify';
import prom from 'prom-client';
import { type Agents, type ApiTimeouts, buildApi } from '../../src/api/app.js';
import { ApiClient } from '../../src/cli/client.js';
import { type Ctx, createCtx, type Settings } from '../../src/core/context.js';
import { ensureAdminToken } from '../../src/core/tokens.js';
import { type MappingService, startMapping } from '../../src/mapping/service.js';
import type { Store } from '../../src/store/store.js';
import type { ConnectionLimits } from '../../src/sys/conn-caps.js';
import { type Dialect, type TestDb, testDb } from './stores.js';

export const ADMIN_SECRET = 'test-admin-secret-0123456789';

export interface TestApi {
  url: string;
  admin: ApiClient;
  as(token: string | undefined): ApiClient;
  ctx: Ctx;
  store: Store;
  db: TestDb;
  app: FastifyInstance;
  /** The mapping service (index, follower, SVP on a free port) when asked for. */
  mapping: MappingService | null;
  close(): Promise<void>;
}

export async function startTestApi(
  dialect: Dialect,
  settings: Partial<Settings> = {},
  o: {
    mapping?: boolean;
    timeouts?: Partial<ApiTimeouts>;
    logger?: object;
    limits?: ConnectionLimits;
    /** The agents GET /v1/agents and /v1/events report. */
    agents?: Agents;
    /** The web console's bundle under /ui/ (absent: no /ui/ routes). */
    ui?: string | null;
  } = {},
): Promise<TestApi> {
  const db = await testDb(dialect);
  const store = await db.open();
  const ctx = createCtx(store, { settings });
  await ensureAdminToken(ctx, ADMIN_SECRET);
  const registry = new prom.Registry();
  const mapping = o.mapping ? await startMapping(store, { svp: { host: '127.0.0.1', port: 0 }, registry }) : null;
  const app = await buildApi(ctx, {
    registry,
    ...(o.timeouts ? { timeouts: o.timeouts } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.limits ? { limits: o.limits } : {}),
    ...(o.agents ? { agents: o.agents } : {}),
    ...(o.ui !== undefined ? { ui: o.ui } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return {
    url,
    admin: new ApiClient(url, ADMIN_SECRET),
    as: (token) => new ApiClient(url, token),
    ctx,
    store,
    db,
    app,
    mapping,
    async close() {
      await app.close();
      await mapping?.close();
      await store.close();
      await db.drop();
    },
  };
}

/** Runs `fn`, expecting a WeftError with this code (and message pattern); returns it. */
export async function expectError(fn: () => Promise<unknown>, code: string, message?: RegExp): Promise<{ code: string; message: string; field?: string }> {
  try {
    await fn();
  } catch (e) {
    const err = e as { code: string; message: string; field?: string };
    if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`);
    if (message && !message.test(err.message)) throw new Error(`expected message ${message}, got: ${err.message}`);
    return err;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

/** A site with pools, a rack and `hosts` hosts of the given capacity. */
export async function smallCloud(api: TestApi, o: { hosts?: number; cpus?: number; memoryMb?: number; diskGb?: number } = {}) {
  const site = await api.admin.post<{ id: string }>('/v1/sites', {
    name: 'ams1',
    underlayPool: '192.0.2.0/24',
    ipv4Pools: ['203.0.113.0/24'],
    ipv6Block: '2001:db8:100::/48',
  });
  await api.admin.post('/v1/racks', { site: 'ams1', name: 'r1' });
  for (let i = 1; i <= (o.hosts ?? 2); i++) {
    await api.admin.post('/v1/hosts', {
      name: `hv${i}`,
      site: 'ams1',
      rack: 'r1',
      asn: 65000 + i,
      capacity: { cpus: o.cpus ?? 64, memoryMb: o.memoryMb ?? 262144, diskGb: o.diskGb ?? 4000 },
    });
  }
  await api.admin.post('/v1/tenants', { name: 'acme' });
  await api.admin.post('/v1/tenants', { name: 'globex' });
  return site;
}
