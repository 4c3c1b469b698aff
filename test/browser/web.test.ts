// The web console in a real browser (Debian's Chromium through
// playwright-core) against a real server: agents are real push-stream
// sessions whose applying can be held, so lag appears and goes. Logs in,
// finds a host, creates an instance and sees it, migrates it and watches the
// lag move, drains a host, shows the API's error in words; a tenant token
// sees only its tenant; axe-core finds no serious violation on any page.
// Screenshots go to test-artifacts/web/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.js';
import { ApiClient } from '../../src/cli/client.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { StreamClient } from '../../src/stream/client.js';
import { until } from '../../src/sys/until.js';
import { type TestDb, testDb } from '../support/stores.js';

const ADMIN = 'test-admin-secret-web-0123456789';
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'web');
const axeSource = readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
/** Generous: the suite must pass on a busy machine. */
const WAIT = 20_000;

/** An agent that takes the stream's state and acks it, or holds its deltas while `held`. */
function fakeAgent(port: number, hostRef: string, token: string) {
  let held = false;
  let release: (() => void)[] = [];
  const c = new StreamClient({
    host: '127.0.0.1',
    port,
    hostRef,
    token,
    handler: {
      snapshot: () => undefined,
      delta: () => (held ? new Promise<void>((r) => release.push(r)) : undefined),
    },
  });
  c.start();
  return {
    client: c,
    hold() {
      held = true;
    },
    go() {
      held = false;
      for (const r of release.splice(0)) r();
      release = [];
    },
    stop: () => c.stop(),
  };
}

describe('web console in Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }, () => {
  let db: TestDb;
  let server: RunningServer;
  let browser: Browser;
  let uiDir: string;
  let api: ApiClient;
  let acmeToken = '';
  let globexVm = '';
  const agents: ReturnType<typeof fakeAgent>[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    uiDir = mkdtempSync(join(tmpdir(), 'weft-web-ui-'));
    await buildWeb(uiDir);
    db = await testDb('sqlite');
    server = await startServer({
      db: db.url,
      api: '127.0.0.1:0',
      svp: 'off',
      stream: '127.0.0.1:0',
      placement: 'spread',
      cpuOvercommit: 1,
      adminToken: ADMIN,
      logLevel: 'silent',
      uiDir,
    });
    api = new ApiClient(server.apiUrl, ADMIN);
    await api.post('/v1/sites', { name: 'ams1', underlayPool: '192.0.2.0/24', ipv4Pools: ['203.0.113.0/24'], ipv6Block: '2001:db8:100::/48' });
    for (const r of ['r1', 'r2']) await api.post('/v1/racks', { site: 'ams1', name: r });
    const streamPort = Number((server.streamAddress as string).split(':').at(-1));
    for (const [i, rack] of ['r1', 'r1', 'r2'].entries()) {
      const name = `hv${i + 1}`;
      await api.post('/v1/hosts', { name, site: 'ams1', rack, asn: 65001 + i, capacity: { cpus: 16, memoryMb: 65536, diskGb: 1000 } });
      const t = await api.post<{ secret: string }>('/v1/tokens', { name: `${name}-agent`, role: 'agent', host: name });
      agents.push(fakeAgent(streamPort, name, t.secret));
    }
    for (const t of ['acme', 'globex']) {
      await api.post('/v1/tenants', { name: t });
      await api.post('/v1/networks', { tenant: t, name: `${t}-net`, kind: 'overlay', subnets: ['10.0.0.0/24', 'fd00:10::/64'] });
    }
    await api.post('/v1/instances', { tenant: 'acme', name: 'acme-db', site: 'ams1', size: 'small', ports: [{ network: 'acme-net' }] });
    globexVm = (
      await api.post<{ id: string }>('/v1/instances', {
        tenant: 'globex',
        name: 'globex-secret-vm',
        site: 'ams1',
        size: 'small',
        ports: [{ network: 'globex-net' }],
      })
    ).id;
    acmeToken = (await api.post<{ secret: string }>('/v1/tokens', { name: 'acme-console', role: 'tenant', tenant: 'acme' })).secret;
    // A VIP with a backend on hv1 and one on hv3; only hv1 will announce it.
    await api.post('/v1/networks', { tenant: 'acme', name: 'acme-pub', kind: 'routed', site: 'ams1' });
    const backends: string[] = [];
    for (const [name, host] of [
      ['web-a', 'hv1'],
      ['web-b', 'hv3'],
    ] as const) {
      const i = await api.post<{ ports: { id: string }[] }>('/v1/instances', {
        tenant: 'acme',
        name,
        site: 'ams1',
        size: 'nano',
        host,
        ports: [{ network: 'acme-pub' }],
      });
      backends.push((i.ports[0] as { id: string }).id);
    }
    const vip = await api.post<{ address: string }>('/v1/vips', {
      tenant: 'acme',
      name: 'www',
      site: 'ams1',
      backends,
      healthCheck: { type: 'tcp', port: 80, intervalMs: 1000, rise: 2, fall: 2 },
    });
    await until('three agents connected', async () => (await api.get<{ items: unknown[] }>('/v1/agents')).items.length === 3, WAIT);
    // What real agents report: BGP sessions (hv3's ToR session down), the VIP announced by hv1 only, a guard nft refused on hv2.
    const at = new Date().toISOString();
    const session = (neighbor: string, up: boolean) => ({
      peerId: null,
      neighbor,
      state: up ? 'Established' : 'Active',
      established: up,
      since: at,
      lastError: up ? null : 'Socket: Connection refused',
      received: up ? 1 : 0,
      accepted: up ? 1 : 0,
      exported: up ? 3 : 0,
    });
    for (const [n, a] of agents.entries()) {
      const up = n !== 2;
      a.client.report({
        birdUp: true,
        inSync: true,
        lastError: null,
        sessions: [session(`192.0.2.${250 + n}`, up)],
        announced: n === 0 ? [`${vip.address}/32`] : [],
      });
    }
    agents[1]?.client.reportGuards({
      unguarded: 1,
      ports: [{ portId: backends[0] as string, ifname: 'wpc0test', kind: 'failed', reason: 'nft: Error: Could not process rule' }],
    });
    await until(
      'the agents reported',
      async () => {
        const items = (await api.get<{ items: { routing: unknown; guards: { unguarded: number } | null }[] }>('/v1/agents')).items;
        return items.every((a) => a.routing !== null) && items.some((a) => a.guards?.unguarded === 1);
      },
      WAIT,
    );
    // launch() gives the browser a fresh temporary profile of its own and removes it on close().
    browser = await chromium.launch({
      headless: true,
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    for (const a of agents) a.stop();
    await server?.close().catch(() => undefined);
    await db?.drop().catch(() => undefined);
    for (const d of [uiDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  /** axe-core on the page as it is: no serious or critical violation. */
  async function axe(page: Page, name: string) {
    // Evaluated through the DevTools protocol: the page's CSP (rightly) refuses an injected <script>.
    await page.evaluate(axeSource);
    const violations = await page.evaluate(async () => {
      const r = await (
        globalThis as unknown as {
          axe: { run: (o: object) => Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> };
        }
      ).axe.run({
        resultTypes: ['violations'],
      });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
    });
    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(serious, [], `axe on ${name}: ${JSON.stringify(serious, null, 1)}`);
  }

  async function shot(page: Page, name: string) {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async function login(page: Page, token: string) {
    await page.goto(`${server.apiUrl}/ui/`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: WAIT });
  }

  test('an operator logs in, finds a host, creates, migrates and deletes an instance, drains a host', { timeout: 180_000 }, async () => {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      // The 401 and 409 this test provokes on purpose are logged by the browser as failed loads.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
    });
    try {
      await page.goto(`${server.apiUrl}/ui/`);
      await page.getByLabel('API token').fill('weft_wrong');
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('alert').filter({ hasText: 'unknown or revoked token' }).waitFor({ timeout: WAIT });
      await axe(page, 'login');
      await shot(page, 'login');
      await login(page, ADMIN);

      // Overview: the hosts with their state and capacity, live.
      await page.getByRole('heading', { name: 'Overview' }).waitFor({ timeout: WAIT });
      await page.getByText('live · version').waitFor({ timeout: WAIT });
      await page.getByRole('link', { name: 'hv3' }).waitFor({ timeout: WAIT });
      await axe(page, 'overview');
      await shot(page, 'overview');

      // Find a host: search, then its page.
      const search = page.getByLabel('Search hosts of site ams1, rack r1');
      await search.fill('hv2');
      await page.getByRole('link', { name: 'hv1' }).waitFor({ state: 'detached', timeout: WAIT });
      await page.getByRole('link', { name: 'hv2' }).click();
      await page.getByRole('heading', { name: 'Host hv2' }).waitFor({ timeout: WAIT });
      await page.getByText('Connected since').waitFor({ timeout: WAIT });
      await axe(page, 'host');
      await shot(page, 'host');

      // Create an instance and see it appear.
      await page.getByRole('link', { name: 'Instances' }).click();
      await page.getByRole('heading', { name: 'Instances' }).waitFor();
      await page.getByText('Create an instance').click();
      await page.getByLabel('Name', { exact: true }).fill('web-1');
      await page.getByLabel('Tenant').selectOption({ label: 'acme' });
      await page.getByLabel('Network (a port on it)').selectOption({ label: 'acme-net' });
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      await page.getByRole('status').filter({ hasText: 'instance web-1 created' }).waitFor({ timeout: WAIT });
      await page.getByRole('link', { name: 'web-1' }).waitFor({ timeout: WAIT });
      // The same name again: the API's error, in words.
      await page.getByLabel('Name', { exact: true }).fill('web-1');
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      await page.getByRole('alert').filter({ hasText: /web-1/ }).waitFor({ timeout: WAIT });
      await axe(page, 'instances');
      await shot(page, 'instances');

      // Its page: addresses, MAC, host, the change log's entries.
      await page.getByRole('link', { name: 'web-1' }).click();
      await page.getByRole('heading', { name: 'Instance web-1' }).waitFor({ timeout: WAIT });
      await page.getByRole('cell', { name: /^10\.0\.0\./ }).waitFor({ timeout: WAIT });
      await page.getByRole('cell', { name: 'instance.updated' }).first().waitFor({ timeout: WAIT });
      const vm = await api.get<{ id: string; hostId: string }>('/v1/instances/web-1');
      const hosts = await api.all<{ id: string; name: string }>('/v1/hosts');
      const target = hosts.find((h) => h.id !== vm.hostId) as { id: string; name: string };
      const targetAgent = agents[Number(target.name.slice(2)) - 1] as ReturnType<typeof fakeAgent>;

      // Migrate it while the target's agent holds its deltas: the lag shows, then goes.
      targetAgent.hold();
      await page.getByLabel('Migrate to').selectOption({ value: target.id });
      await page.getByRole('button', { name: 'Migrate' }).click();
      await page.getByRole('status').filter({ hasText: 'migration of web-1 started' }).waitFor({ timeout: WAIT });
      await page.getByRole('link', { name: target.name }).first().waitFor({ timeout: WAIT });
      await axe(page, 'instance');
      await shot(page, 'instance');
      await page.getByRole('link', { name: 'Agents' }).click();
      const maxLag = page.getByTestId('max-lag');
      await until('the lag shows', async () => Number(await maxLag.textContent()) > 0, WAIT);
      await page.locator('.trouble, tbody tr').first().waitFor();
      await shot(page, 'agents-lagging');
      targetAgent.go();
      await until('the lag is gone', async () => Number(await maxLag.textContent()) === 0, WAIT);
      // The chart drew both: a canvas, and a window whose peak is the lag that went.
      assert.ok(await page.locator('.chart canvas').count(), 'the lag chart is drawn');
      assert.ok(Number(await page.locator('.chart').getAttribute('data-peak')) > 0, "the chart's window holds the lag");
      await axe(page, 'agents');
      await shot(page, 'agents');

      // The host whose guard failed is highlighted, with the reason on its page.
      const hv2Row = page.locator('tr.trouble').filter({ has: page.getByRole('link', { name: 'hv2' }) });
      await hv2Row.getByText('1 port(s) unplugged: guard not in place').waitFor({ timeout: WAIT });

      await page.getByRole('link', { name: 'Routing' }).click();
      await page.getByRole('heading', { name: 'BGP sessions per host' }).waitFor({ timeout: WAIT });
      // The VIP: announced by hv1; its backend there healthy, the one on hv3 not.
      await page.getByText('announced by hv1').waitFor({ timeout: WAIT });
      await page.getByRole('row', { name: /web-a.*hv1.*healthy/ }).waitFor({ timeout: WAIT });
      await page.getByRole('row', { name: /web-b.*hv3.*not announced/ }).waitFor({ timeout: WAIT });
      await page.getByRole('row', { name: /192\.0\.2\.252.*Active.*Connection refused/ }).waitFor({ timeout: WAIT });
      await page.getByRole('row', { name: /192\.0\.2\.250.*Established/ }).waitFor({ timeout: WAIT });
      await axe(page, 'routing');
      await shot(page, 'routing');

      // The change log, live: the migration's entries with their actor.
      await page.getByRole('link', { name: 'Change log' }).click();
      await page.getByRole('cell', { name: 'port.moved' }).first().waitFor({ timeout: WAIT });
      await page.getByRole('cell', { name: 'admin' }).first().waitFor({ timeout: WAIT });
      await axe(page, 'changes');
      await shot(page, 'changes');

      for (const [nav, heading, name] of [
        ['Tenants', 'Tenants', 'tenants'],
        ['Networks', 'Networks', 'networks'],
        ['Ports', 'Ports', 'ports'],
      ] as const) {
        await page.getByRole('link', { name: nav, exact: true }).click();
        await page.getByRole('heading', { name: heading, exact: true }).waitFor({ timeout: WAIT });
        await page.locator('tbody tr').first().waitFor({ timeout: WAIT });
        await axe(page, name);
        await shot(page, name);
      }
      await page.getByRole('link', { name: 'Networks', exact: true }).click();
      await page.getByRole('link', { name: 'acme-net' }).click();
      await page.getByRole('heading', { name: 'Network acme-net' }).waitFor({ timeout: WAIT });
      await axe(page, 'network');

      // Drain a host, then undrain it.
      await page.goto(`${server.apiUrl}/ui/#/hosts/hv3`);
      await page.getByRole('heading', { name: 'Host hv3' }).waitFor({ timeout: WAIT });
      await page.getByRole('button', { name: 'Drain' }).click();
      await page.getByRole('status').filter({ hasText: 'hv3 is draining' }).waitFor({ timeout: WAIT });
      await page.getByRole('button', { name: 'Undrain (make active)' }).waitFor({ timeout: WAIT });
      assert.equal((await api.get<{ state: string }>('/v1/hosts/hv3')).state, 'draining');
      await shot(page, 'host-draining');
      await page.getByRole('button', { name: 'Undrain (make active)' }).click();
      await page.getByRole('button', { name: 'Drain' }).waitFor({ timeout: WAIT });
      assert.equal((await api.get<{ state: string }>('/v1/hosts/hv3')).state, 'active');

      // Delete the instance.
      await page.goto(`${server.apiUrl}/ui/#/instances/${vm.id}`);
      await page.getByRole('button', { name: 'Delete…' }).click();
      await page.getByRole('button', { name: 'Really delete web-1' }).click();
      await page.getByRole('heading', { name: 'Instance deleted' }).waitFor({ timeout: WAIT });
      await assert.rejects(() => api.get('/v1/instances/web-1'), /not found|no instance/i);
      assert.deepEqual(errors, [], 'no error in the page');
    } finally {
      await ctx.close();
    }
  });

  test("a tenant token sees only its tenant's objects", { timeout: 120_000 }, async () => {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const page = await ctx.newPage();
    try {
      await login(page, acmeToken);
      await page.getByRole('heading', { name: 'Instances' }).waitFor({ timeout: WAIT });
      await page.getByRole('link', { name: 'acme-db' }).waitFor({ timeout: WAIT });
      assert.equal(await page.getByText('globex-secret-vm').count(), 0);
      assert.equal(await page.getByRole('link', { name: 'Agents' }).count(), 0, 'no operator pages in the menu');
      await axe(page, 'tenant-instances');
      await shot(page, 'tenant-instances');
      // Another tenant's instance by its id: the API says not found, the page says so.
      await page.goto(`${server.apiUrl}/ui/#/instances/${globexVm}`);
      await page
        .getByRole('alert')
        .filter({ hasText: /not found|no instance/i })
        .waitFor({ timeout: WAIT });
      assert.equal(await page.getByText('globex-secret-vm').count(), 0);
      // An operator page typed in: the API refuses, the page shows its words.
      await page.goto(`${server.apiUrl}/ui/#/hosts/hv1`);
      await page
        .getByRole('alert')
        .filter({ hasText: /may not/ })
        .waitFor({ timeout: WAIT });
      await page.goto(`${server.apiUrl}/ui/#/networks`);
      await page.getByRole('link', { name: 'acme-net' }).waitFor({ timeout: WAIT });
      assert.equal(await page.getByText('globex-net').count(), 0);
      await shot(page, 'tenant-networks');
    } finally {
      await ctx.close();
    }
  });
});
