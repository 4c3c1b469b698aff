// `weft server`, the composition root: opens the store (migrating it),
// bootstraps the admin token from WEFT_ADMIN_TOKEN, wires the use cases into
// the API and the push stream, and serves them until close().

import { createSecureContext } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import prom from 'prom-client';
import { type ApiTimeouts, buildApi, DEFAULT_API_LIMITS } from '../api/app.js';
import { defaultUiDir } from '../api/ui.js';
import { type Ctx, createCtx, DEFAULT_TENANT_RATE_MAX, type Settings } from '../core/context.js';
import * as ref from '../core/resolve.js';
import { authenticate, ensureAdminToken } from '../core/tokens.js';
import { DEFAULT_SVP_IDLE_MS, DEFAULT_SVP_LIMITS } from '../mapping/server.js';
import { type MappingService, startMapping } from '../mapping/service.js';
import { SVP_PORT } from '../mapping/wire.js';
import { invalid, WeftError } from '../model/errors.js';
import { DEFAULT_QUOTAS, type Quotas } from '../model/quotas.js';
import type { PlacementPolicy } from '../model/types.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { STREAM_PORT } from '../stream/protocol.js';
import { DEFAULT_STREAM_HELLO_MS, DEFAULT_STREAM_LIMITS, DEFAULT_STREAM_STALL_MS, type StreamContext, StreamServer, type StreamTls } from '../stream/server.js';
import { type ConnectionLimits, connectionLimits } from '../sys/conn-caps.js';
import { readPem } from '../sys/pem.js';
import { serveConsoles } from './console-ws.js';

export interface ServerOptions {
  db: string;
  api: string;
  /** HOST:PORT for SVP, or 'off'. */
  svp: string;
  /** HOST:PORT for the agents' push stream, or 'off'. */
  stream: string;
  /** PEM files to serve the stream over TLS; with `ca`, mutual TLS (each agent's certificate names its host). */
  streamTls?: { cert: string; key: string; ca?: string | undefined } | undefined;
  /** PEM files to serve the API over HTTPS. */
  apiTls?: { cert: string; key: string } | undefined;
  /** `--stream-tls-ca` given without the stream's own certificate: refused. */
  streamTlsCa?: string | undefined;
  placement: PlacementPolicy;
  cpuOvercommit: number;
  adminToken?: string | undefined;
  logLevel: string;
  /** The API listener's timeouts (DEFAULT_API_TIMEOUTS for those not given). */
  apiTimeouts?: Partial<ApiTimeouts> | undefined;
  /** The most a tenant token may set a network's arpRate/ndRate to (DEFAULT_TENANT_RATE_MAX for those not given). */
  tenantRateMax?: Partial<Settings['tenantRateMax']> | undefined;
  /** The quotas of tenants without their own (DEFAULT_QUOTAS for those not given). */
  quotas?: Partial<Quotas> | undefined;
  /** Connection caps per listener (each listener's defaults for those not given). */
  limits?: { svp?: Partial<ConnectionLimits>; stream?: Partial<ConnectionLimits>; api?: Partial<ConnectionLimits> } | undefined;
  /** An SVP connection idle longer is closed (DEFAULT_SVP_IDLE_MS). */
  svpIdleMs?: number | undefined;
  /** A stream connection without a hello this long after connecting is closed (DEFAULT_STREAM_HELLO_MS). */
  streamHelloMs?: number | undefined;
  /** A stream connection with a frame unfinished this long is closed (DEFAULT_STREAM_STALL_MS). */
  streamStallMs?: number | undefined;
  /** The web console's bundle served under /ui/ (defaultUiDir(): the build's own; null: none). */
  uiDir?: string | null | undefined;
}

/** A timeout option in ms, checked: an integer 1..3600000. */
function timeoutMs(field: string, v: number | undefined, dflt: number): number {
  const n = v ?? dflt;
  if (!(Number.isInteger(n) && n >= 1 && n <= 3_600_000)) throw invalid(field, n, 'must be an integer 1..3600000 (milliseconds)');
  return n;
}

export interface RunningServer {
  app: FastifyInstance;
  store: Store;
  mapping: MappingService;
  /** The address the API actually listens on (port 0 resolved). */
  apiUrl: string;
  /** host:port SVP listens on, or null. */
  svpAddress: string | null;
  /** host:port the push stream listens on, or null. */
  streamAddress: string | null;
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

/** The stream server's view of the use cases: tokens and hosts as the API resolves them. */
export function streamContext(ctx: Ctx): StreamContext {
  return {
    store: ctx.store,
    authenticate: (secret) => authenticate(ctx, secret),
    host: (hostRef) => ctx.store.read((tx) => ref.host(tx, hostRef)),
  };
}

/**
 * A listener's TLS files, read and checked to make a working context (the key
 * is the certificate's, the CA parses): throws E_INVALID_ARG naming the flags.
 */
export function tlsFiles(prefix: '--stream-tls' | '--api-tls', f: { cert: string; key: string; ca?: string | undefined }): StreamTls {
  const files: StreamTls = {
    cert: readPem(`${prefix}-cert`, f.cert, 'certificate'),
    key: readPem(`${prefix}-key`, f.key, 'private key'),
    ...(f.ca !== undefined ? { ca: readPem(`${prefix}-ca`, f.ca, 'certificate') } : {}),
  };
  try {
    createSecureContext(files);
  } catch (e) {
    const flags = `${prefix}-cert ${JSON.stringify(f.cert)}, ${prefix}-key ${JSON.stringify(f.key)}${f.ca !== undefined ? `, ${prefix}-ca ${JSON.stringify(f.ca)}` : ''}`;
    throw new WeftError(
      'E_INVALID_ARG',
      `invalid TLS files (${flags}): ${(e as Error).message.replace(/^error:[0-9A-Fa-f]+:[^:]*::?/, '')}; the key must be the certificate's`,
      `${prefix}-cert`,
      {
        cause: e,
      },
    );
  }
  return files;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const listen = parseListen('api', o.api, 8080);
  const svpListen = o.svp === 'off' ? null : parseListen('svp', o.svp, SVP_PORT);
  const streamListen = o.stream === 'off' ? null : parseListen('stream', o.stream, STREAM_PORT);
  // Checked before the store is opened: a bad flag changes nothing.
  const limits = {
    svp: connectionLimits('svp', { ...DEFAULT_SVP_LIMITS, ...o.limits?.svp }),
    stream: connectionLimits('stream', { ...DEFAULT_STREAM_LIMITS, ...o.limits?.stream }),
    api: connectionLimits('api', { ...DEFAULT_API_LIMITS, ...o.limits?.api }),
  };
  const svpIdleMs = timeoutMs('svp-idle-timeout', o.svpIdleMs, DEFAULT_SVP_IDLE_MS);
  const streamHelloMs = timeoutMs('stream-hello-timeout', o.streamHelloMs, DEFAULT_STREAM_HELLO_MS);
  const streamStallMs = timeoutMs('stream-stall-timeout', o.streamStallMs, DEFAULT_STREAM_STALL_MS);
  if (o.streamTlsCa !== undefined && !o.streamTls)
    throw invalid('--stream-tls-ca', o.streamTlsCa, 'mutual TLS needs the stream itself over TLS: give --stream-tls-cert and --stream-tls-key too');
  // Before the store opens: a wrong file stops the server with nothing started.
  const tls = o.streamTls ? tlsFiles('--stream-tls', o.streamTls) : undefined;
  const apiTls = o.apiTls ? tlsFiles('--api-tls', o.apiTls) : undefined;
  const store = await openStore(o.db);
  let mapping: MappingService | null = null;
  let stream: StreamServer | null = null;
  try {
    const ctx = createCtx(store, {
      settings: {
        placement: { policy: o.placement, cpuOvercommit: o.cpuOvercommit },
        tenantRateMax: { ...DEFAULT_TENANT_RATE_MAX, ...o.tenantRateMax },
        quotas: { ...DEFAULT_QUOTAS, ...o.quotas },
      },
    });
    if (o.adminToken) await ensureAdminToken(ctx, o.adminToken);
    const registry = new prom.Registry();
    mapping = await startMapping(store, {
      svp: svpListen,
      registry,
      onApplied: (c) => stream?.deliver(c),
      svpOptions: { limits: limits.svp, idleMs: svpIdleMs },
    });
    let streamAddress: string | null = null;
    if (streamListen) {
      stream = new StreamServer(streamContext(ctx), mapping.follower.index, {
        registry,
        tls,
        limits: limits.stream,
        helloMs: streamHelloMs,
        stallMs: streamStallMs,
      });
      const a = await stream.listen(streamListen.host, streamListen.port);
      streamAddress = `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
    }
    const st = stream;
    // The newest version this process committed: writes answer once the index has it
    // (usually at once; if another replica's commit came first, after the follower reads it).
    let lastLocal = 0;
    store.subscribe((v, changes) => {
      if (changes) lastLocal = Math.max(lastLocal, v);
    });
    const follower = mapping.follower;
    const afterWrite = () => follower.waitFor(lastLocal, 2000).catch(() => undefined);
    const app = await buildApi(ctx, {
      logger: o.logLevel === 'silent' ? false : { level: o.logLevel },
      registry,
      agents: { status: () => st?.status() ?? [] },
      afterWrite,
      timeouts: o.apiTimeouts,
      limits: limits.api,
      tls: apiTls,
      ui: o.uiDir === undefined ? defaultUiDir() : o.uiDir,
    });
    // Serial consoles: WebSocket upgrades on the API's listener, relayed through the push stream.
    const consoles = serveConsoles(app, ctx, st ?? null);
    await app.listen({ host: listen.host, port: listen.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : listen.port;
    const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
    const svpAddress = mapping.svpAddress
      ? `${mapping.svpAddress.host.includes(':') ? `[${mapping.svpAddress.host}]` : mapping.svpAddress.host}:${mapping.svpAddress.port}`
      : null;
    const m = mapping;
    return {
      app,
      store,
      mapping: m,
      apiUrl: `${apiTls ? 'https' : 'http'}://${host}:${port}`,
      svpAddress,
      streamAddress,
      async close() {
        consoles.close();
        await app.close();
        await st?.close();
        await m.close();
        await store.close();
      },
    };
  } catch (e) {
    await stream?.close();
    await mapping?.close();
    await store.close();
    throw e;
  }
}
