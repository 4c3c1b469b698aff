// The REST API: /v1 routes over the core use cases, bearer-token auth with
// roles, one error format ({code, message, field}), OpenAPI and metrics.
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type as T, type TSchema } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { ALL, actingAs, type Ctx, type Scope } from '../core/context.js';
import * as fabric from '../core/fabric.js';
import * as infra from '../core/infra.js';
import * as inst from '../core/instances.js';
import * as keys from '../core/keys.js';
import * as peers from '../core/peers.js';
import * as profiles from '../core/profiles.js';
import * as q from '../core/queries.js';
import * as routers from '../core/routers.js';
import * as tenancy from '../core/tenancy.js';
import * as tokens from '../core/tokens.js';
import * as vips from '../core/vips.js';
import { invalid, WeftError } from '../model/errors.js';
import type { Role, Token } from '../model/types.js';
import { ConnectionCaps, type ConnectionLimits, type RefuseReason } from '../sys/conn-caps.js';
import { answerFor, BODY_LIMIT, describeValidation, rawAnswer } from './errors.js';
import { EventHub } from './events.js';
import { createMetrics } from './metrics.js';
import { documentRoute, NO_CONTENT } from './openapi.js';
import * as S from './schemas.js';
import { serveUi } from './ui.js';

/** What a role may do. Tenant tokens are further scoped to their tenant by the core. */
type Perm = 'infra-read' | 'infra-write' | 'sites-read' | 'tenant-read' | 'tenant-write' | 'admin' | 'audit';

const ALLOWED: Record<Perm, readonly Role[]> = {
  'sites-read': ['admin', 'readonly', 'tenant'],
  'infra-read': ['admin', 'readonly'],
  'infra-write': ['admin'],
  'tenant-read': ['admin', 'readonly', 'tenant'],
  'tenant-write': ['admin', 'tenant'],
  admin: ['admin'],
  audit: ['admin', 'readonly'],
};

interface Principal {
  token: Token;
  scope: Scope;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** The error code this request was answered with, for its log line. */
    errorCode: string | null;
  }
  interface FastifyContextConfig {
    perm?: Perm;
    /** Agents may read their own host with this route. */
    agentOwnHost?: boolean;
  }
}

/**
 * The agents connected to this server's push stream, as GET /v1/agents
 * reports them; wired by the composition root (server/server.ts).
 */
export interface Agents {
  /** Each connected agent's applied version, lag, routing and guards reports, by host id. Synchronous, never throws. */
  status(): S.AgentStatus[];
}

/**
 * How long the API's listener waits for a client, in milliseconds, so a
 * client that sends a byte at a time (slow loris) or idles cannot hold a
 * connection for long. Node checks the header and request limits every
 * quarter of the smaller one (at most every second).
 */
export interface ApiTimeouts {
  /** From a request's first byte to the end of its headers. */
  headersMs: number;
  /** From a request's first byte to the end of its body. */
  requestMs: number;
  /** A keep-alive connection idle between requests. */
  keepAliveMs: number;
  /** A connection with no traffic either way (a client that stops reading its answer, too). */
  idleMs: number;
}

export const DEFAULT_API_TIMEOUTS: ApiTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 10_000, idleMs: 60_000 };

/** The timeouts with the defaults filled in; refuses values Node would not take. */
export function apiTimeouts(t: Partial<ApiTimeouts> = {}): ApiTimeouts {
  const o = { ...DEFAULT_API_TIMEOUTS, ...t };
  for (const [k, v] of Object.entries(o))
    if (!(Number.isInteger(v) && v >= 1 && v <= 3_600_000)) throw invalid(`timeouts.${k}`, v, 'must be an integer 1..3600000 (milliseconds)');
  if (o.headersMs > o.requestMs) throw invalid('timeouts.headersMs', o.headersMs, `must be at most timeouts.requestMs (${o.requestMs})`);
  return o;
}

/** API connections in total and per source; operators' scripts and dashboards, not thousands of clients. */
export const DEFAULT_API_LIMITS: ConnectionLimits = { max: 1024, perSource: 256 };
/**
 * Connections past the cap still let in, to answer /healthz and /metrics
 * (and E_BUSY to anything else) and be closed: a full listener stays
 * observable. Each is closed after at most RESERVE_MS.
 */
export const API_RESERVE = 16;
const RESERVE_MS = 5000;
/** Paths answered on a connection over the cap. */
const ALWAYS_ANSWERED = new Set(['/healthz', '/metrics']);

export interface ApiOptions {
  /** Connection caps (DEFAULT_API_LIMITS when absent). */
  limits?: ConnectionLimits | undefined;
  logger?: boolean | object;
  /** The listener's timeouts (DEFAULT_API_TIMEOUTS when absent). */
  timeouts?: Partial<ApiTimeouts>;
  /** Where /metrics collects from; other components (the mapping service) register here too. */
  registry?: import('prom-client').Registry;
  /** The push stream's view of connected agents (applied version and lag); none when absent. */
  agents?: Agents;
  /**
   * Awaited before answering any request that may have written: the mapping
   * index has then applied it, so a lookup right after the answer sees it.
   */
  afterWrite?: () => Promise<void>;
  /** Serve HTTPS with this certificate (chain) and key, PEM; plain HTTP when absent. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** The web console's bundle directory, served under /ui/ (null: /ui/ says it is not built); no /ui/ routes when absent. */
  ui?: string | null;
}

export async function buildApi(ctx: Ctx, opts: ApiOptions = {}): Promise<FastifyInstance> {
  // One log line per request (in onResponse below) instead of Fastify's two.
  const t = apiTimeouts(opts.timeouts);
  const app = Fastify({
    logger: opts.logger ?? false,
    requestTimeout: t.requestMs,
    keepAliveTimeout: t.keepAliveMs,
    connectionTimeout: t.idleMs,
    http: { headersTimeout: t.headersMs, connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(Math.min(t.headersMs, t.requestMs) / 4))) },
    bodyLimit: BODY_LIMIT,
    // Requests are logged once, by the API's own hook (with the error code); Fastify's per-request lines are off.
    logController: new LogController({ disableRequestLogging: true }),
    // Requests during close get the API's own E_UNAVAILABLE body (the first onRequest hook).
    return503OnClosing: false,
    // An https.Server is an http.Server with TLS in front: routes, timeouts and error handling are the same.
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    // The errors Fastify answers before a route's error handler (a bad URL) and
    // those Node's HTTP parser reports on the socket get the one error body too.
    frameworkErrors: (err, req, reply: FastifyReply) => {
      const a = answerFor(err, req.id);
      req.errorCode = a.body.code;
      reply.status(a.status).send(a.body);
    },
    clientErrorHandler: (err, socket) => {
      if ((err as { code?: string }).code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) socket.write(rawAnswer(err));
      socket.destroy(err);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // JSON only: any other content type (text/plain included) is refused with 415.
  app.removeContentTypeParser('text/plain');
  const metrics = createMetrics(ctx, opts.registry);

  // Bodies are checked strictly (no coercion, unknown fields are errors); query strings are coerced.
  const ajvBody = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  const ajvQuery = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  for (const s of S.SHARED) {
    ajvBody.addSchema(s);
    ajvQuery.addSchema(s);
    app.addSchema(s);
  }
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajvBody : ajvQuery).compile(schema));

  // Before swagger's own hook, so the spec it collects has them: every operation's id and error answers.
  app.addHook('onRoute', (route) => documentRoute(route));

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Weft API',
        version: '1',
        description: 'Network control plane: sites, hosts, tenants, networks, instances, ports, VIPs, BGP peers.',
        license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
      },
      // Relative: the API answers on whatever address it listens (--api-listen).
      servers: [{ url: '/', description: 'the server this document was read from' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (json.$id as string | undefined) ?? `def-${i}` },
  });

  app.decorateRequest('principal', null);
  app.decorateRequest('errorCode', null);

  /**
   * The ctx a request's use cases run under: every change they append is
   * recorded as made by the request's token (core/context.ts actingAs).
   */
  const actx = (req: FastifyRequest): Ctx => actingAs(ctx, req.principal ? { tokenId: req.principal.token.id, name: req.principal.token.name } : null);
  /** Who did it, for the logs: the token's id and name (none on unauthenticated routes). */
  const actor = (req: FastifyRequest) => (req.principal ? { tokenId: req.principal.token.id, token: req.principal.token.name } : null);
  /** A domain event, logged at info once its write committed, with who caused it. */
  const event = (req: FastifyRequest, name: string, fields: Record<string, unknown>) => req.log.info({ event: name, actor: actor(req), ...fields }, name);

  // Connection caps: a connection over them is let into a small reserve that
  // answers only /healthz and /metrics, then closed; past the reserve too, closed at once.
  const caps = new ConnectionCaps('api', opts.limits ?? DEFAULT_API_LIMITS, metrics.registry);
  const reserve = new ConnectionCaps('api-reserve', { max: API_RESERVE, perSource: API_RESERVE });
  const over = new WeakMap<object, RefuseReason>();
  app.server.on('connection', (sock: import('node:net').Socket) => {
    const reason = caps.admit(sock);
    if (!reason) return;
    if (reserve.admit(sock)) {
      sock.destroy();
      return;
    }
    over.set(sock, reason);
    const t = setTimeout(() => sock.destroy(), RESERVE_MS);
    sock.once('close', () => clearTimeout(t));
  });
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (closing) {
      reply.header('connection', 'close');
      return reply.status(503).send({ code: 'E_UNAVAILABLE', message: 'the server is shutting down: retry against another replica or after its restart' });
    }
    const reason = over.get(req.raw.socket);
    if (!reason) return;
    reply.header('connection', 'close');
    if (ALWAYS_ANSWERED.has(req.url.split('?')[0] as string)) return;
    const l = caps.limits;
    const message =
      reason === 'total'
        ? `the API is at its cap of ${l.max} connections: retry later`
        : `the API is at its cap of ${l.perSource} connections from ${req.raw.socket.remoteAddress}: close some, or retry later`;
    return reply.status(503).send({ code: 'E_BUSY', message });
  });

  app.addHook('onRequest', async (req: FastifyRequest) => {
    const perm = req.routeOptions.config.perm;
    if (!perm) return;
    const h = req.headers.authorization;
    const m = h ? /^Bearer\s+(\S+)$/i.exec(h) : null;
    if (!m) throw new WeftError('E_UNAUTHENTICATED', 'missing bearer token: send "Authorization: Bearer <token>"');
    const token = await tokens.authenticate(ctx, m[1] as string);
    if (!token) throw new WeftError('E_UNAUTHENTICATED', 'unknown or revoked token');
    req.principal = { token, scope: token.role === 'tenant' ? { tenantId: token.tenantId } : ALL };
    if (ALLOWED[perm].includes(token.role)) return;
    if (token.role === 'agent' && req.routeOptions.config.agentOwnHost) {
      const id = (req.params as { id?: string }).id;
      if (id !== undefined && (id === token.hostId || (await isHostName(ctx, id, token.hostId)))) return;
    }
    throw new WeftError('E_FORBIDDEN', `a ${token.role} token may not ${req.method} ${req.routeOptions.url}`);
  });

  if (opts.afterWrite) {
    const wait = opts.afterWrite;
    app.addHook('onSend', async (req) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') await wait();
    });
  }

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.latency.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    req.log.info(
      {
        method: req.method,
        url: req.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        token: req.principal?.token.name,
        // What a 4xx or 5xx answered, so a log search finds every E_FORBIDDEN.
        ...(reply.statusCode >= 400 && req.errorCode ? { code: req.errorCode } : {}),
      },
      'request',
    );
  });

  app.setErrorHandler((err: Error & { validation?: never; validationContext?: string }, req, reply) => {
    if (err.validation) {
      try {
        const part = err.validationContext ?? 'body';
        const data = part === 'body' ? req.body : part === 'params' ? req.params : part === 'headers' ? req.headers : req.query;
        const d = describeValidation(err.validation, part, data);
        req.errorCode = 'E_INVALID_ARG';
        return reply.status(400).send({ code: 'E_INVALID_ARG', message: d.message, field: d.field });
      } catch {
        req.errorCode = 'E_INVALID_ARG';
        return reply.status(400).send({ code: 'E_INVALID_ARG', message: `invalid ${err.validationContext ?? 'body'}` });
      }
    }
    const a = answerFor(err, req.id);
    req.errorCode = a.body.code;
    if (a.internal) req.log.error({ err }, 'internal error');
    return reply.status(a.status).send(a.body);
  });

  app.setNotFoundHandler((req, reply) => {
    req.errorCode = 'E_NOT_FOUND';
    reply.status(404).send({ code: 'E_NOT_FOUND', message: `no such route: ${req.method} ${req.url.split('?')[0]}` });
  });

  // --- unauthenticated -------------------------------------------------
  app.get('/healthz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      const version = await ctx.store.headVersion();
      return { status: 'ok', store: ctx.store.dialect, version };
    } catch (e) {
      return reply.status(503).send({ status: 'unavailable', store: ctx.store.dialect, error: (e as Error).message });
    }
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  if (opts.ui !== undefined) serveUi(app, opts.ui);

  // --- /v1 ---------------------------------------------------------------
  const scope = (req: FastifyRequest): Scope => req.principal?.scope ?? ALL;
  const created = <R>(reply: FastifyReply, v: R) => reply.status(201).send(v);
  const noContent = (reply: FastifyReply) => reply.status(204).send();
  const ListQuery = (kind: q.Kind) =>
    T.Object(
      {
        limit: T.Optional(T.Integer({ minimum: 1, maximum: q.PAGE_MAX, default: q.PAGE_DEFAULT })),
        after: T.Optional(S.QueryStr),
        ...Object.fromEntries(q.filtersOf(kind).map((f) => [f, T.Optional(S.QueryStr)])),
      },
      { additionalProperties: true },
    );

  function crud<C extends TSchema, P extends TSchema>(o: {
    kind: q.Kind;
    path: string;
    tag: string;
    item: TSchema;
    /** What get and update answer, when more than a list item (a tenant's limits and usage). */
    detail?: TSchema;
    read: Perm;
    write: Perm;
    create?: { body: C; handler: (req: FastifyRequest, body: Static<C>) => Promise<unknown> };
    get?: (req: FastifyRequest, id: string) => Promise<unknown>;
    update?: { body: P; handler: (req: FastifyRequest, id: string, body: Static<P>) => Promise<unknown> };
    remove?: (req: FastifyRequest, id: string) => Promise<void>;
    agentOwnHost?: boolean;
  }) {
    const tags = [o.tag];
    app.get(
      `/v1/${o.path}`,
      {
        config: { perm: o.read },
        schema: { tags, summary: `List ${o.path}`, querystring: ListQuery(o.kind), response: { 200: S.Page(o.item) } },
      },
      async (req) => q.list(ctx, scope(req), o.kind, req.query as q.ListQuery),
    );
    app.get(
      `/v1/${o.path}/:id`,
      {
        config: { perm: o.read, agentOwnHost: o.agentOwnHost ?? false },
        schema: { tags, summary: `Get one of ${o.path} by id or name`, params: S.IdParam, response: { 200: o.detail ?? o.item } },
      },
      async (req) => {
        const { id } = req.params as { id: string };
        return o.get ? o.get(req, id) : q.get(ctx, scope(req), o.kind as never, id);
      },
    );
    if (o.create) {
      const c = o.create;
      app.post(
        `/v1/${o.path}`,
        { config: { perm: o.write }, schema: { tags, summary: `Create in ${o.path}`, body: c.body, response: { 201: o.item } } },
        async (req, reply) => created(reply, await c.handler(req, req.body as Static<C>)),
      );
    }
    if (o.update) {
      const u = o.update;
      app.patch(
        `/v1/${o.path}/:id`,
        {
          config: { perm: o.write },
          schema: { tags, summary: `Update one of ${o.path}`, params: S.IdParam, body: u.body, response: { 200: o.detail ?? o.item } },
        },
        async (req) => u.handler(req, (req.params as { id: string }).id, req.body as Static<P>),
      );
    }
    if (o.remove) {
      const r = o.remove;
      app.delete(
        `/v1/${o.path}/:id`,
        { config: { perm: o.write }, schema: { tags, summary: `Delete one of ${o.path}`, params: S.IdParam, response: { 204: NO_CONTENT } } },
        async (req, reply) => {
          await r(req, (req.params as { id: string }).id);
          return noContent(reply);
        },
      );
    }
  }

  crud({
    kind: 'sites',
    path: 'sites',
    tag: 'infrastructure',
    item: T.Ref('Site'),
    read: 'sites-read',
    write: 'infra-write',
    create: { body: S.SiteCreate, handler: (r, b) => infra.createSite(actx(r), b) },
    update: { body: S.SitePatch, handler: (r, id, b) => infra.updateSite(actx(r), id, b) },
    remove: (r, id) => infra.deleteSite(actx(r), id),
  });
  crud({
    kind: 'racks',
    path: 'racks',
    tag: 'infrastructure',
    item: T.Ref('Rack'),
    read: 'infra-read',
    write: 'infra-write',
    create: { body: S.RackCreate, handler: (r, b) => infra.createRack(actx(r), b) },
    remove: (r, id) => infra.deleteRack(actx(r), id),
  });
  crud({
    kind: 'hosts',
    path: 'hosts',
    tag: 'infrastructure',
    item: T.Ref('Host'),
    read: 'infra-read',
    write: 'infra-write',
    agentOwnHost: true,
    create: { body: S.HostCreate, handler: (r, b) => infra.createHost(actx(r), b) },
    update: {
      body: S.HostPatch,
      handler: async (r, id, b) => {
        const before = b.state === undefined ? null : ((await q.get(ctx, ALL, 'hosts', id)) as { state: string });
        const h = await infra.updateHost(actx(r), id, b);
        if (before && before.state !== h.state) event(r, 'host.state_changed', { host: h.id, name: h.name, from: before.state, to: h.state });
        return h;
      },
    },
    remove: (r, id) => infra.deleteHost(actx(r), id),
  });
  crud({
    kind: 'tenants',
    path: 'tenants',
    tag: 'tenancy',
    item: T.Ref('Tenant'),
    detail: T.Ref('TenantWithUsage'),
    read: 'tenant-read',
    // Operators only, quotas included: a tenant token gets E_FORBIDDEN.
    write: 'infra-write',
    get: (r, id) => tenancy.getTenant(ctx, scope(r), id),
    create: { body: S.TenantCreate, handler: (r, b) => tenancy.createTenant(actx(r), b) },
    update: { body: S.TenantPatch, handler: (r, id, b) => tenancy.updateTenant(actx(r), id, b) },
    remove: (r, id) => tenancy.deleteTenant(actx(r), id),
  });
  crud({
    kind: 'networks',
    path: 'networks',
    tag: 'tenancy',
    item: T.Ref('Network'),
    read: 'tenant-read',
    write: 'tenant-write',
    create: { body: S.NetworkCreate, handler: (r, b) => tenancy.createNetwork(actx(r), scope(r), b) },
    update: { body: S.NetworkPatch, handler: (r, id, b) => tenancy.updateNetwork(actx(r), scope(r), id, b) },
    remove: (r, id) => tenancy.deleteNetwork(actx(r), scope(r), id),
  });
  crud({
    kind: 'instances',
    path: 'instances',
    tag: 'instances',
    item: T.Ref('InstanceWithPorts'),
    read: 'tenant-read',
    write: 'tenant-write',
    get: (r, id) => inst.getInstance(ctx, scope(r), id),
    create: {
      body: S.InstanceCreate,
      handler: async (r, b) => {
        const i = await inst.createInstance(actx(r), scope(r), b);
        event(r, 'instance.placed', { instance: i.id, name: i.name, tenant: i.tenantId, host: i.hostId });
        return i;
      },
    },
    update: {
      body: S.InstancePatch,
      // Re-read by id: the reference may have been the old name.
      handler: async (r, id, b) => inst.getInstance(ctx, scope(r), (await inst.updateInstance(actx(r), scope(r), id, b)).id),
    },
    remove: async (r, id) => {
      const i = await inst.deleteInstance(actx(r), scope(r), id);
      event(r, 'instance.deleted', { instance: i.id, name: i.name, tenant: i.tenantId, host: i.hostId });
    },
  });
  crud({
    kind: 'ports',
    path: 'ports',
    tag: 'instances',
    item: T.Ref('Port'),
    read: 'tenant-read',
    write: 'tenant-write',
    create: { body: S.PortCreate, handler: (r, b) => inst.createPort(actx(r), scope(r), b) },
    update: { body: S.PortPatch, handler: (r, id, b) => inst.updatePort(actx(r), scope(r), id, b) },
    remove: (r, id) => inst.deletePort(actx(r), scope(r), id),
  });
  crud({
    kind: 'vips',
    path: 'vips',
    tag: 'vips',
    item: T.Ref('Vip'),
    read: 'tenant-read',
    write: 'tenant-write',
    get: (r, id) => vips.getVip(ctx, scope(r), id),
    create: { body: S.VipCreate, handler: (r, b) => vips.createVip(actx(r), scope(r), b) },
    update: { body: S.VipPatch, handler: (r, id, b) => vips.updateVip(actx(r), scope(r), id, b) },
    remove: (r, id) => vips.deleteVip(actx(r), scope(r), id),
  });
  crud({
    kind: 'sshKeys',
    path: 'keys',
    tag: 'tenancy',
    item: T.Ref('SshKey'),
    read: 'tenant-read',
    write: 'tenant-write',
    create: { body: S.SshKeyCreate, handler: (r, b) => keys.createKey(actx(r), scope(r), b) },
    remove: (r, id) => keys.deleteKey(actx(r), scope(r), id),
  });
  app.get(
    '/v1/instances/:id/profile',
    {
      config: { perm: 'tenant-read' },
      schema: {
        tags: ['instances'],
        summary: "The instance's VM profile: libvirt domain XML and cloud-init NoCloud seed",
        operationId: 'getInstanceProfile',
        params: S.IdParam,
        response: { 200: T.Ref('InstanceProfile') },
      },
    },
    async (req) => profiles.getProfile(ctx, scope(req), (req.params as { id: string }).id),
  );
  crud({
    kind: 'peers',
    path: 'peers',
    tag: 'routing',
    item: T.Ref('Peer'),
    read: 'infra-read',
    write: 'infra-write',
    create: { body: S.PeerCreate, handler: (r, b) => peers.createPeer(actx(r), b) },
    update: { body: S.PeerPatch, handler: (r, id, b) => peers.updatePeer(actx(r), id, b) },
    remove: (r, id) => peers.deletePeer(actx(r), id),
  });
  // Fabric routers: operators only, like hosts (docs/fabric.md).
  crud({
    kind: 'routers',
    path: 'routers',
    tag: 'fabric',
    item: T.Ref('Router'),
    read: 'infra-read',
    write: 'infra-write',
    create: { body: S.RouterCreate, handler: (r, b) => routers.createRouter(actx(r), b) },
    update: { body: S.RouterPatch, handler: (r, id, b) => routers.updateRouter(actx(r), id, b) },
    remove: (r, id) => routers.deleteRouter(actx(r), id),
  });
  app.get(
    '/v1/routers/:id/config',
    {
      config: { perm: 'infra-read' },
      schema: {
        tags: ['fabric'],
        summary: "The router's complete config, rendered from the source of truth (text/plain)",
        operationId: 'getRouterConfig',
        params: S.IdParam,
        querystring: T.Object({ format: T.Optional(T.Union([T.Literal('bird'), T.Literal('frr')])) }, { additionalProperties: false }),
        response: {
          200: {
            description: 'bird.conf or frr.conf; the X-Weft-Platform header names which',
            content: { 'text/plain': { schema: T.String() } },
          },
        },
      },
    },
    async (req, reply) => {
      const { platform, config } = await fabric.routerConfig(ctx, (req.params as { id: string }).id, (req.query as { format?: string }).format);
      return reply.header('x-weft-platform', platform).type('text/plain; charset=utf-8').send(config);
    },
  );
  crud({
    kind: 'tokens',
    path: 'tokens',
    tag: 'auth',
    item: T.Ref('Token'),
    read: 'admin',
    write: 'admin',
    remove: async (r, id) => {
      event(r, 'token.revoked', { tokenId: await tokens.deleteToken(actx(r), id) });
    },
  });
  app.post(
    '/v1/tokens',
    {
      config: { perm: 'admin' },
      schema: { tags: ['auth'], summary: 'Create a token; the secret is shown only in this reply', body: S.TokenCreate, response: { 201: S.TokenCreated } },
    },
    async (req, reply) => {
      const t = await tokens.createToken(actx(req), req.body as Static<typeof S.TokenCreate>);
      event(req, 'token.created', { tokenId: t.token.id, name: t.token.name, role: t.token.role });
      return created(reply, t);
    },
  );
  app.post(
    '/v1/instances/:id/migrate',
    {
      config: { perm: 'admin' },
      schema: {
        tags: ['instances'],
        summary: 'Move an instance to another host (the target, or one placement picks); the body is optional',
        params: S.IdParam,
        body: T.Optional(S.Migrate),
        response: { 200: T.Ref('InstanceWithPorts') },
      },
      // The body is optional: an empty one (Content-Length 0) is no body,
      // whatever Content-Type says (Fastify refuses an empty JSON body), and
      // no body is `{}` (the schema alone would refuse undefined).
      preParsing: async (req, _reply, payload) => {
        if (req.headers['content-length'] === '0' && req.headers['transfer-encoding'] === undefined) delete req.headers['content-type'];
        return payload;
      },
      preValidation: async (req) => {
        if (req.body === undefined || req.body === null) req.body = {};
      },
    },
    async (req) => {
      const i = await inst.migrateInstance(actx(req), ALL, (req.params as { id: string }).id, (req.body as { target?: string } | undefined)?.target);
      event(req, 'instance.migrated', { instance: i.id, name: i.name, host: i.hostId });
      return i;
    },
  );
  app.get(
    '/v1/changes',
    {
      config: { perm: 'audit' },
      schema: {
        tags: ['changes'],
        summary:
          'The change log: every change that affects forwarding, with the token that made it and the object it is about; oldest first from `after`, or newest first (`order=desc`, paging down with `before`)',
        querystring: T.Object({
          after: T.Integer({ minimum: 0, default: 0, description: 'only versions above this one' }),
          before: T.Optional(T.Integer({ minimum: 1, description: 'only versions below this one (the next page of order=desc: its last version)' })),
          order: T.Union([T.Literal('asc'), T.Literal('desc')], {
            default: 'asc',
            description: 'asc: the oldest of the range first (agents and followers); desc: the newest first',
          }),
          limit: T.Integer({ minimum: 1, maximum: q.PAGE_MAX, default: q.PAGE_DEFAULT }),
        }),
        response: { 200: T.Object({ items: T.Array(T.Ref('Change')), head: T.Integer() }) },
      },
    },
    async (req) => {
      const { after, before, order, limit } = req.query as { after: number; before?: number; order: 'asc' | 'desc'; limit: number };
      return q.changes(ctx, { after, before: before ?? null, order, limit });
    },
  );
  app.get(
    '/v1/agents',
    {
      config: { perm: 'audit' },
      schema: {
        tags: ['agents'],
        summary:
          "Agents connected to this server's push stream: each host's applied change-log version and lag, its BGP sessions and the local ports it keeps unplugged for want of a guard",
        response: {
          200: T.Object({ head: T.Integer(), items: T.Array(S.AgentStatus) }),
        },
      },
    },
    async () => ({ head: await ctx.store.headVersion(), items: opts.agents?.status() ?? [] }),
  );
  const hub = new EventHub(ctx, () => opts.agents?.status() ?? []);
  app.addHook('preClose', async () => hub.close());
  app.get(
    '/v1/events',
    {
      config: { perm: 'tenant-read' },
      schema: {
        tags: ['events'],
        summary:
          "A text/event-stream (read it with fetch: it needs the bearer header) of `hello`, then `agents` (operators only: GET /v1/agents, sent when it changes, checked twice a second) and `change` (each new change-log entry: version, kind, object, actor; a tenant token gets its own tenant's, without actor); `end` closes it when its token is deleted or expires; a comment line every 15 s. At most 8 per token (E_BUSY)",
        response: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: T.String() } } } },
      },
    },
    async (req, reply) => {
      const p = req.principal as Principal;
      const out = await hub.open(p.token, p.scope);
      // The client went away (or the answer ended): the hub forgets the stream.
      reply.raw.once('close', () => out.destroy());
      reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-store').header('x-accel-buffering', 'no');
      // A stream is piped as it is; the schema above only documents it.
      return reply.send(out as unknown as string);
    },
  );
  app.get(
    '/v1/whoami',
    { config: { perm: 'tenant-read' }, schema: { tags: ['auth'], summary: 'The token this request authenticated with', response: { 200: T.Ref('Token') } } },
    async (req) => req.principal?.token,
  );

  return app;
}

async function isHostName(ctx: Ctx, ref: string, hostId: string | null): Promise<boolean> {
  if (hostId === null) return false;
  const h = await ctx.store.read((tx) => tx.findOne('hosts', { name: ref }));
  return h?.id === hostId;
}
