// VM profiles pushed to the hypervisor: a real server, and two real agents
// (runAgent, each in a network namespace of its own) managing their VMs
// through libvirt's test driver (test:///default) with the agent's real
// code path: the stream's instance records, the profile rendered with the
// agent's own directory, the NoCloud seed built by cloud-localds, and the
// domains defined, started, stopped and undefined through one long-lived
// virsh. An instance's life: placed and running, stopped, moved to the other
// host (the source removes it), deleted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type RunningAgent, runAgent } from '../../src/agent/main.js';
import { ApiClient } from '../../src/cli/client.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { quietLog } from '../../src/sys/log.js';
import { until } from '../../src/sys/until.js';
import { type TestDb, testDb } from '../support/stores.js';

const sh = promisify(execFile);
const TOKEN = 'agent-vms-test-admin-token-0123456789';
const NS = (h: string) => `weft-vms-${h}-${process.pid}`;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICsGYMEXLBhGso2iwZ5c4n6I0X5XwSK/tagQqQ/PKa/k user@ed25519';

/** A sanity bound for each wait (a busy machine is slow, not broken). */
const wait = (what: string, ok: () => boolean | Promise<boolean>) => until(what, ok, 20_000);

describe('agents keep their hosts VMs as the source of truth says (libvirt test driver)', () => {
  let db: TestDb;
  let server: RunningServer;
  let api: ApiClient;
  let dir: string;
  const agents = new Map<string, RunningAgent>();
  let plain: RunningAgent | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-agent-vms-'));
    for (const h of ['hv1', 'hv2', 'hv3']) await sh('ip', ['netns', 'add', NS(h)]);
    db = await testDb('sqlite');
    server = await startServer({
      db: db.url,
      api: '127.0.0.1:0',
      svp: '127.0.0.1:0',
      stream: '127.0.0.1:0',
      placement: 'spread',
      cpuOvercommit: 1,
      adminToken: TOKEN,
      logLevel: 'silent',
    });
    api = new ApiClient(server.apiUrl, TOKEN);
    // The image, as an operator puts it on every hypervisor; each instance's disk is an overlay on it.
    await sh('mkdir', ['-p', join(dir, 'images')]);
    await sh('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'images', 'debian-12.qcow2'), '1G']);
    await api.post('/v1/sites', {
      name: 'ams1',
      underlayPool: '127.0.0.0/24',
      vm: { dnsServers: ['192.0.2.53'], imagePath: `${join(dir, 'images')}/{image}.qcow2` },
    });
    for (const h of ['hv1', 'hv2', 'hv3']) await api.post('/v1/hosts', { name: h, site: 'ams1', capacity: { cpus: 8, memoryMb: 16384, diskGb: 1000 } });
    await api.post('/v1/tenants', { name: 'acme' });
    await api.post('/v1/keys', { tenant: 'acme', name: 'laptop', publicKey: KEY });
    await api.post('/v1/networks', { tenant: 'acme', name: 'priv', kind: 'overlay', subnets: ['10.0.0.0/24'] });
    const [host, port] = (server.streamAddress as string).split(':') as [string, string];
    const start = async (h: string, vm: boolean) => {
      const token = (await api.post<{ secret: string }>('/v1/tokens', { name: `${h}-agent`, role: 'agent', host: h })).secret;
      return runAgent({
        server: host,
        streamPort: Number(port),
        svpPort: Number((server.svpAddress as string).split(':')[1]),
        host: h,
        token,
        metrics: 'off',
        netns: NS(h),
        log: quietLog,
        routing: null,
        vm: vm ? { dir: join(dir, h), libvirt: 'test:///default', domainType: 'test' } : null,
      });
    };
    for (const h of ['hv1', 'hv2']) agents.set(h, await start(h, true));
    // An agent that does not manage VMs: it never hears of instances.
    plain = await start('hv3', false);
  });
  after(async () => {
    for (const a of agents.values()) await a.stop();
    await plain?.stop();
    await server?.close();
    await db?.drop();
    for (const h of ['hv1', 'hv2', 'hv3']) await sh('ip', ['netns', 'del', NS(h)]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  const vms = (h: string) => agents.get(h)?.vms ?? assert.fail(`agent ${h} has no VMs`);
  const domain = async (h: string, id: string) => (await vms(h).domains()).get(`weft-${id}`);
  const files = (h: string, id: string) => join(dir, h, 'instances', id);

  test('an instance placed with an image is defined and started on its host, from files the agent wrote', async () => {
    const i = await api.post<{ id: string; hostId: string }>('/v1/instances', {
      tenant: 'acme',
      name: 'web1',
      site: 'ams1',
      size: 'nano',
      host: 'hv1',
      image: 'debian-12',
      ports: [{ network: 'priv' }],
    });
    await wait('web1 running on hv1', async () => (await domain('hv1', i.id)) === 'running');
    const d = files('hv1', i.id);
    for (const f of ['domain.xml', 'meta-data', 'network-config', 'user-data', 'seed.img', 'disk.qcow2']) assert.ok(existsSync(join(d, f)), f);
    // Its own disk: an overlay of the instance's size on the image, which it never writes.
    const info = JSON.parse((await sh('qemu-img', ['info', '--output', 'json', '-U', join(d, 'disk.qcow2')])).stdout) as {
      format: string;
      'backing-filename': string;
      'virtual-size': number;
    };
    assert.equal(info.format, 'qcow2');
    assert.equal(info['backing-filename'], join(dir, 'images', 'debian-12.qcow2'));
    assert.equal(info['virtual-size'], 10 * 1024 ** 3, 'the size of a nano instance (10 GB)');
    assert.equal((await stat(join(d, 'disk.qcow2'))).mode & 0o777, 0o600, "the guest's data: root's only");
    const xml = await readFile(join(d, 'domain.xml'), 'utf8');
    assert.match(xml, /^<domain type='test'>/);
    assert.ok(xml.includes(`${d}/console.sock`), "the console socket in the agent's own directory");
    assert.ok((await readFile(join(d, 'user-data'), 'utf8')).includes(KEY), "the tenant's key in the seed");
    // What the API renders is the same profile, but for the console's directory and the domain type.
    const p = await api.get<{ domain: string; userData: string }>(`/v1/instances/${i.id}/profile`);
    assert.equal(p.userData, await readFile(join(d, 'user-data'), 'utf8'));
    assert.equal((await vms('hv2').domains()).size, 0, 'the other host defines nothing');
    // The operator sees it in GET /v1/agents.
    const report = async () =>
      (await api.get<{ items: { hostId: string; vms: { running: number; failing: unknown[] } | null }[] }>('/v1/agents')).items.find(
        (a) => a.hostId === i.hostId,
      )?.vms;
    await wait('hv1 reports its VM', async () => (await report())?.running === 1);
    assert.deepEqual((await report())?.failing, []);
    assert.equal(plain?.agent.state.instances.size, 0);
    assert.equal(plain?.agent.state.instancesKnown, false, 'an agent without --vm-dir is sent no instances');
  });

  test('stopped through the API, the domain stops; a changed key rewrites the seed', async () => {
    const i = await api.get<{ id: string }>('/v1/instances/web1');
    await api.patch('/v1/instances/web1', { state: 'stopped' });
    await wait('web1 stopped', async () => (await domain('hv1', i.id)) === 'stopped');
    await api.delete('/v1/keys/laptop');
    await wait('the key gone from the seed', async () => !(await readFile(join(files('hv1', i.id), 'user-data'), 'utf8')).includes(KEY));
    assert.equal(await domain('hv1', i.id), 'stopped', 'still stopped');
    await api.patch('/v1/instances/web1', { state: 'running' });
    await wait('web1 running again', async () => (await domain('hv1', i.id)) === 'running');
  });

  test('a move defines it on the destination and removes it from the source; a delete removes it', async () => {
    const i = await api.get<{ id: string }>('/v1/instances/web1');
    await api.post(`/v1/instances/${i.id}/migrate`, { target: 'hv2' });
    await wait('web1 running on hv2', async () => (await domain('hv2', i.id)) === 'running');
    await wait('web1 gone from hv1', async () => (await domain('hv1', i.id)) === undefined && !existsSync(files('hv1', i.id)));
    await api.delete(`/v1/instances/${i.id}`);
    await wait('web1 gone from hv2', async () => (await domain('hv2', i.id)) === undefined && !existsSync(files('hv2', i.id)));
    for (const h of ['hv1', 'hv2']) assert.equal(vms(h).status.failed.size, 0, `${h}: nothing failing`);
  });

  test('an instance without an image is left alone, and says so', async () => {
    const i = await api.post<{ id: string }>('/v1/instances', { tenant: 'acme', name: 'bare', site: 'ams1', size: 'nano', host: 'hv1' });
    await wait('hv1 counts it', () => vms('hv1').status.noImage === 1);
    assert.equal(await domain('hv1', i.id), undefined);
    assert.ok(!existsSync(files('hv1', i.id)));
  });
});
