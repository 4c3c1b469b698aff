// GET /v1/events over a real listener: who may open it, what each role gets
// (a tenant only its own tenant's changes, without actors or agents), the
// per-token cap, the end of a deleted token's streams; and the web
// console's files under /ui/ (content types, CSP, caching, no traversal).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildWeb } from '../../scripts/build-web.js';
import { STREAMS_PER_TOKEN } from '../../src/api/events.js';
import type { AgentStatus } from '../../src/api/schemas.js';
import { UI_CSP } from '../../src/api/ui.js';
import { until } from '../../src/sys/until.js';
import { ADMIN_SECRET, smallCloud, startTestApi, type TestApi } from '../support/api.js';
import { openSse, type SseReader } from '../support/sse.js';

const agent = (hostId: string, lag: number): AgentStatus => ({
  hostId,
  connectedAt: new Date().toISOString(),
  appliedVersion: 10 - lag,
  sentVersion: 10,
  lag,
  routing: null,
  guards: { unguarded: 0, ports: [] },
  vms: null,
});

describe('GET /v1/events', () => {
  let api: TestApi;
  let acme: string;
  let readonly: string;
  let agentToken: string;
  const agents: AgentStatus[] = [];
  const open: SseReader[] = [];
  const sse = async (token: string | undefined) => {
    const r = await openSse(`${api.url}/v1/events`, token);
    open.push(r);
    return r;
  };
  before(async () => {
    api = await startTestApi('sqlite', {}, { agents: { status: () => agents.map((a) => ({ ...a })) } });
    await smallCloud(api);
    acme = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'acme-ci', role: 'tenant', tenant: 'acme' })).secret;
    readonly = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'ro', role: 'readonly' })).secret;
    agentToken = (await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'hv1-agent', role: 'agent', host: 'hv1' })).secret;
  });
  after(async () => {
    for (const r of open) r.close();
    await api?.close();
  });

  test('needs a token of a console role', async () => {
    const none = await fetch(`${api.url}/v1/events`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { code: string }).code, 'E_UNAUTHENTICATED');
    const ag = await fetch(`${api.url}/v1/events`, { headers: { authorization: `Bearer ${agentToken}` } });
    assert.equal(ag.status, 403);
  });

  test('an operator gets hello, the agents when they change, and each change with its actor', async () => {
    const hv1 = await api.admin.get<{ id: string }>('/v1/hosts/hv1');
    agents.splice(0, agents.length, agent(hv1.id, 0));
    const s = await sse(ADMIN_SECRET);
    assert.equal(s.status, 200);
    assert.match(s.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(s.headers.get('cache-control'), 'no-store');
    const hello = await s.next((e) => e.type === 'hello');
    assert.equal((hello.data as { role: string }).role, 'admin');
    await s.next((e) => e.type === 'agents' && (e.data as { items: AgentStatus[] }).items[0]?.lag === 0);
    (agents[0] as AgentStatus).lag = 3;
    await s.next((e) => e.type === 'agents' && (e.data as { items: AgentStatus[] }).items[0]?.lag === 3);
    await api.admin.post('/v1/networks', { tenant: 'globex', name: 'g-net', kind: 'overlay', subnets: ['10.8.0.0/24'] });
    const c = await s.next((e) => e.type === 'change' && (e.data as { kind: string }).kind === 'network.created');
    const d = c.data as { actor: { name: string } | null; object: { kind: string }; version: number };
    assert.equal(d.object.kind, 'network');
    assert.ok(d.actor, 'an operator sees who made the change');
    assert.ok(d.version > 0);
    s.close();
  });

  test('a readonly token gets the agents too', async () => {
    const s = await sse(readonly);
    await s.next((e) => e.type === 'agents');
    s.close();
  });

  test("a tenant token gets its own tenant's changes only, without actors, and no agents", async () => {
    const s = await sse(acme);
    await s.next((e) => e.type === 'hello');
    await api.admin.post('/v1/networks', { tenant: 'globex', name: 'g-secret', kind: 'overlay', subnets: ['10.9.0.0/24'] });
    await api.as(acme).post('/v1/networks', { name: 'a-net', kind: 'overlay', subnets: ['10.0.0.0/24'] });
    const mine = await s.next((e) => e.type === 'change');
    const d = mine.data as { kind: string; actor: unknown; tenantId: string };
    assert.equal(d.kind, 'network.created');
    assert.equal(d.actor, null);
    const acmeTenant = await api.admin.get<{ id: string }>('/v1/tenants/acme');
    assert.equal(d.tenantId, acmeTenant.id);
    // A host change (infrastructure) after it: must not come either.
    await api.admin.patch('/v1/hosts/hv2', { state: 'draining' });
    await api.as(acme).post('/v1/networks', { name: 'a-net2', kind: 'overlay', subnets: ['10.1.0.0/24'] });
    await s.next((e) => e.type === 'change' && (e.data as { object: { name: string | null } }).object.name === 'a-net2');
    for (const e of s.events) {
      assert.notEqual(e.type, 'agents', 'a tenant sees no agent internals');
      if (e.type === 'change') assert.equal((e.data as { tenantId: string }).tenantId, acmeTenant.id, JSON.stringify(e));
    }
    assert.ok(!JSON.stringify(s.events).includes('g-secret'));
    s.close();
  });

  test(`at most ${STREAMS_PER_TOKEN} streams per token (E_BUSY), and a deleted token's streams end`, async () => {
    const t = await api.admin.post<{ secret: string; token: { id: string } }>('/v1/tokens', { name: 'many', role: 'readonly' });
    // Opened all at once, one more than allowed: exactly one is refused.
    const all = await Promise.all(Array.from({ length: STREAMS_PER_TOKEN + 1 }, () => sse(t.secret)));
    assert.deepEqual(all.map((s) => s.status).sort(), [...Array.from({ length: STREAMS_PER_TOKEN }, () => 200), 503]);
    const streams = all.filter((s) => s.status === 200);
    for (const s of streams) await s.next((e) => e.type === 'hello');
    const over = await fetch(`${api.url}/v1/events`, { headers: { authorization: `Bearer ${t.secret}` } });
    assert.equal(over.status, 503);
    const body = (await over.json()) as { code: string; message: string };
    assert.equal(body.code, 'E_BUSY');
    assert.match(body.message, /event streams open/);
    // Another token is not held back by this one's cap.
    const other = await sse(readonly);
    await other.next((e) => e.type === 'hello');
    other.close();
    // A stream the client closes frees its place.
    (streams.shift() as SseReader).close();
    let again: SseReader | null = null;
    await until('a place is free again', async () => {
      const s = await sse(t.secret);
      if (s.status === 200) again = s;
      else s.close();
      return s.status === 200;
    });
    streams.push(again as unknown as SseReader);
    await api.admin.call('DELETE', `/v1/tokens/${t.token.id}`);
    for (const s of streams) {
      await s.next((e) => e.type === 'end');
      await s.ended;
    }
  });

  test("a token's streams end when it expires", async () => {
    const t = await api.admin.post<{ secret: string }>('/v1/tokens', { name: 'brief', role: 'readonly', expiresAt: new Date(Date.now() + 1500).toISOString() });
    const s = await sse(t.secret);
    await s.next((e) => e.type === 'hello');
    const end = await s.next((e) => e.type === 'end');
    assert.match((end.data as { reason: string }).reason, /expired/);
    await s.ended;
  });

  test('the OpenAPI document describes it as text/event-stream', async () => {
    const doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as {
      paths: Record<string, { get?: { operationId: string; responses: Record<string, { content?: Record<string, unknown> }> } }>;
    };
    const op = doc.paths['/v1/events']?.get;
    assert.ok(op);
    assert.ok(op.responses['200']?.content?.['text/event-stream']);
  });
});

describe('the web console under /ui/', () => {
  let api: TestApi;
  let empty: TestApi;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-ui-'));
    await buildWeb(dir);
    api = await startTestApi('sqlite', {}, { ui: dir });
    empty = await startTestApi('sqlite', {}, { ui: null });
  });
  after(async () => {
    await api?.close();
    await empty?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('index.html and its assets, with types, CSP and caching', async () => {
    const r = await fetch(`${api.url}/ui/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(r.headers.get('content-security-policy'), UI_CSP);
    assert.match(UI_CSP, /default-src 'self'/);
    assert.doesNotMatch(UI_CSP, /unsafe-inline|unsafe-eval/);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const html = await r.text();
    assert.doesNotMatch(html, /<script>|<style|https?:\/\//, 'no inline script or style, nothing from elsewhere');
    const js = /src="(app-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    const css = /href="(app-[A-Z0-9]+\.css)"/.exec(html)?.[1];
    assert.ok(js && css, html);
    const a = await fetch(`${api.url}/ui/${js}`);
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const etag = a.headers.get('etag');
    assert.ok(etag);
    assert.equal((await fetch(`${api.url}/ui/${js}`, { headers: { 'if-none-match': etag } })).status, 304);
    assert.equal((await fetch(`${api.url}/ui/${css}`)).headers.get('content-type'), 'text/css; charset=utf-8');
    const redirect = await fetch(`${api.url}/ui`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), '/ui/');
  });

  test('unknown files and paths out of the bundle are 404', async () => {
    for (const p of [
      '/ui/nosuch.js',
      '/ui/../package.json',
      '/ui/%2e%2e/package.json',
      '/ui/..%2fpackage.json',
      '/ui/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/ui/web/index.html',
      '/ui/index.html/',
    ]) {
      const r = await fetch(`${api.url}${p}`);
      assert.equal(r.status, 404, p);
      const b = await r.text();
      assert.doesNotMatch(b, /"name": ?"weft"|root:/, p);
    }
  });

  test('a server without a bundle says how to build it', async () => {
    const r = await fetch(`${empty.url}/ui/`);
    assert.equal(r.status, 404);
    assert.match(((await r.json()) as { message: string }).message, /npm run build/);
  });
});
