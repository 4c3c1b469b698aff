// A push-stream server on a fresh SQLite store for the stream suites: an admin
// token, one site with the named hosts, the mapping service feeding the stream,
// listening on a free loopback port. close() removes all of it.
import prom from 'prom-client';
import { type Ctx, createCtx } from '../../src/core/context.js';
import * as infra from '../../src/core/infra.js';
import { ensureAdminToken } from '../../src/core/tokens.js';
import { type MappingService, startMapping } from '../../src/mapping/service.js';
import { streamContext } from '../../src/server/server.js';
import type { Store } from '../../src/store/store.js';
import { type StreamContext, StreamServer } from '../../src/stream/server.js';
import { type TestDb, testDb } from './stores.js';

export interface StreamFixture {
  store: Store;
  ctx: Ctx;
  stream: StreamServer;
  /** The mapping service feeding the stream (a test that restarts the stream builds the new one on its index). */
  mapping: MappingService;
  port: number;
  close(): Promise<void>;
}

export async function startStreamFixture(o: {
  token: string;
  hosts: string[];
  stream?: ConstructorParameters<typeof StreamServer>[2];
  /** The stream's view of the server, from the real one (to slow a step down, say). */
  context?: (real: StreamContext) => StreamContext;
}): Promise<StreamFixture> {
  let db: TestDb | undefined;
  let store: Store | undefined;
  let mapping: MappingService | undefined;
  let stream: StreamServer | undefined;
  const close = async () => {
    await stream?.close();
    await mapping?.close();
    await store?.close();
    await db?.drop();
  };
  try {
    db = await testDb('sqlite');
    store = await db.open();
    const ctx = createCtx(store);
    await ensureAdminToken(ctx, o.token);
    await infra.createSite(ctx, { name: 's', underlayPool: '192.0.2.0/24' });
    for (const name of o.hosts) await infra.createHost(ctx, { name, site: 's', capacity: { cpus: 1, memoryMb: 1024, diskGb: 1 } });
    mapping = await startMapping(store, { svp: null, registry: new prom.Registry(), onApplied: (c) => stream?.deliver(c) });
    const real = streamContext(ctx);
    stream = new StreamServer(o.context ? o.context(real) : real, mapping.follower.index, o.stream);
    const port = (await stream.listen('127.0.0.1', 0)).port;
    return { store, ctx, stream, mapping, port, close };
  } catch (e) {
    await close();
    throw e;
  }
}
