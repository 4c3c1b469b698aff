// The lab's control plane failing under it, through the real CLI: on
// SQLite the one server killed and restarted, on PostgreSQL one of two
// replicas killed while instances are created through both; a hypervisor
// failed and evacuated by the operator's commands. Forwarding between
// instances must not miss a ping, nothing acknowledged may be lost, every
// agent must reach the head again, and `down` leaves nothing behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { findPgBin, type PgCluster, startPgCluster } from '../../scripts/pg-cluster.js';
import { ApiClient } from '../../src/cli/client.js';
import { parseIpRoutes } from '../../src/lab/bird.js';
import type { EvacuationReport, FaultReport } from '../../src/lab/cloud.js';
import type { LabState } from '../../src/lab/daemon.js';
import { WEFT_BIN } from '../../src/lab/server-process.js';
import { run } from '../../src/sys/exec.js';
import { readSecretFile } from '../../src/sys/secret-file.js';

const root = process.getuid?.() === 0;
const weft = (args: string[], okCodes: number[] = []) => run(WEFT_BIN, args, { okCodes, timeoutMs: 300_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The CLI of one lab: `weft lab ...` with its name, JSON reports, its check and its teardown. */
function labCli(name: string) {
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await weft(['-o', 'json', 'lab', ...args, '--name', name], [1]);
    assert.equal(r.code, 0, `weft lab ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const namespaces = () =>
    execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith(`${name}-`));
  return {
    json,
    status: () => json<LabState>(['status']),
    /** `weft lab check` exits 0; a BFD flap of an untouched host on a busy machine gets two more tries, 5 s apart. */
    async checkPasses(t: { diagnostic(m: string): void }) {
      let r = await weft(['lab', 'check', '--name', name], [1]);
      for (let i = 0; i < 2 && r.code !== 0; i++) {
        t.diagnostic(
          `check failed, trying again in 5 s: ${r.stdout
            .split('\n')
            .filter((l) => l.startsWith('FAIL'))
            .join(' | ')}`,
        );
        await sleep(5000);
        r = await weft(['lab', 'check', '--name', name], [1]);
      }
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /ok +no fault in place/);
    },
    /** Fails, naming the fault, while one is in place. */
    async checkFails(fault: RegExp) {
      const r = await weft(['lab', 'check', '--name', name], [1]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, fault);
    },
    /** The gateways of router `node`'s kernel route for exactly `prefix`. */
    nextHops: (node: string, prefix: string) =>
      parseIpRoutes(execFileSync('ip', ['-n', `${name}-${node}`, '-j', 'route', 'show', 'exact', prefix], { encoding: 'utf8' })).map((h) => h.via),
    async down() {
      await weft(['lab', 'down', '--name', name], [1]).catch(() => undefined);
      assert.deepEqual(namespaces(), [], 'no namespace of the lab left');
      assert.doesNotMatch(
        execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }),
        new RegExp(`weft-bird-${name}-|weft-${name}-|ip netns exec ${name}-`),
        'no process of the lab left',
      );
    },
  };
}

const pingLine = (p: FaultReport['pings']) => (p ?? []).map((x) => `${x.lost}/${x.sent} lost ${x.what}`).join('; ');
const timing = (r: FaultReport) => r.timings.map((x) => `${x.what}: ${x.ms} ms`).join('; ');

describe('weft lab on SQLite: the server restarted, a host failed and evacuated', { skip: root ? false : 'needs root (network namespaces)' }, () => {
  const NAME = 'wls';
  const lab = labCli(NAME);
  let s: LabState;
  const host = (name: string) => s.hosts.find((h) => h.name === name) as LabState['hosts'][number];
  const where = (instance: string) => s.instances.find((i) => i.name === instance)?.host as string;
  const cli = (args: string[], okCodes: number[] = []) =>
    run(WEFT_BIN, ['--api', s.api as string, '--token-file', s.tokenFile as string, '-o', 'json', ...args], { okCodes });

  before(async () => {
    await weft(['lab', 'down', '--name', NAME], [1]);
    await weft(['lab', 'up', '--name', NAME, '--tenants', '2', '--instances', '8']);
    s = await lab.status();
  });
  after(() => lab.down());

  test('fail server: forwarding goes on, a change is refused; heal: every agent back at the head, no ping lost', async (t) => {
    assert.equal(s.servers?.length, 1);
    assert.ok(
      s.agents?.every((a) => a.connected && a.server === 1),
      JSON.stringify(s.agents),
    );
    const f = await lab.json<FaultReport>(['fail', 'server']);
    t.diagnostic(`fail server: ${timing(f)}; pings ${pingLine(f.pings)}`);
    assert.equal(f.ok, true, JSON.stringify(f));
    assert.ok(
      f.notes.some((n) => /was refused: cannot reach the API/.test(n)),
      f.notes.join('\n'),
    );
    assert.equal(f.pings?.[0]?.lost, 0, JSON.stringify(f.pings));
    s = await lab.status();
    assert.deepEqual(s.faults, ['server 1']);
    assert.equal(s.servers?.[0]?.up, false);
    await lab.checkFails(/FAIL +no fault in place: still failed: server 1 \(`weft lab heal server 1`\)/);
    const again = await weft(['lab', 'fail', 'server', '1', '--name', NAME], [1]);
    assert.match(again.stderr, /error: server 1 is failed already/);
    const two = await weft(['lab', 'fail', 'server', '2', '--name', NAME], [1]);
    assert.match(two.stderr, /error: invalid target "2": must be 1 or none: the lab runs one server/);
    await sleep(2000);

    const move = await weft(['lab', 'move', 't1vm1', '--name', NAME], [1]);
    assert.match(move.stderr, /error: no server of lab wls is running \(failed: server 1\): `weft lab heal server` first/);
    const db = await weft(['lab', 'up', '--name', 'wlsx', '--db', 'mysql://root:secret@db/weft'], [1]);
    assert.match(
      db.stderr,
      /^error: invalid --db "mysql:\/\/root:\*\*\*@db\/weft": must be sqlite \(the default: a file of the lab\), sqlite:PATH, or a postgres:/m,
    );

    const h = await lab.json<FaultReport>(['heal', 'server']);
    t.diagnostic(`heal server: ${timing(h)}; pings ${pingLine(h.pings)}`);
    assert.equal(h.ok, true, JSON.stringify(h));
    assert.ok((h.pings?.[0]?.sent ?? 0) >= 100, JSON.stringify(h.pings));
    assert.equal(h.pings?.[0]?.lost, 0, `pings lost while the server was down: ${JSON.stringify(h.pings)}`);
    s = await lab.status();
    assert.equal(s.servers?.[0]?.up, true);
    assert.ok(
      s.agents?.every((a) => a.connected && a.server === 1),
      JSON.stringify(s.agents),
    );
    // The API is back where it was: what `up` printed still works.
    assert.equal(JSON.parse((await cli(['instance', 'get', 't1vm1'])).stdout).name, 't1vm1');
    await lab.checkPasses(t);
  });

  test('fail host, then evacuate: the operator commands through the API, every instance answers on its new host', async (t) => {
    s = await lab.status();
    const h = host(where('web1'));
    const mine = s.instances.filter((i) => i.host === h.name).map((i) => i.name);
    const early = await weft(['lab', 'evacuate', h.name, '--name', NAME], [1]);
    assert.match(early.stderr, new RegExp(`error: host ${h.name} is not failed: \`weft lab fail host ${h.name}\` first`));
    const f = await lab.json<FaultReport>(['fail', 'host', h.name]);
    assert.equal(f.ok, true, JSON.stringify(f));
    const bad = await weft(['lab', 'evacuate', 'nosuch', '--name', NAME], [1]);
    assert.match(bad.stderr, /error: invalid host "nosuch": must be a host of lab wls: /);

    const e = await lab.json<EvacuationReport>(['evacuate', h.name]);
    t.diagnostic(
      `evacuate ${h.name}: ${e.moves.map((m) => `${m.instance} -> ${m.to} ${m.answeredMs} ms`).join(', ')}; ${e.timings.map((x) => `${x.what}: ${x.ms} ms`).join('; ')}`,
    );
    assert.equal(e.ok, true, JSON.stringify(e));
    // The host first, so that placement leaves it out; then every instance the API had on it.
    assert.equal(e.commands[0], `weft host update ${h.name} --state down`);
    assert.deepEqual(e.commands.slice(1).sort(), mine.map((i) => `weft instance migrate ${i}`).sort());
    assert.deepEqual(e.moves.map((m) => m.instance).sort(), [...mine].sort());
    for (const m of e.moves) {
      assert.notEqual(m.to, h.name);
      assert.ok(m.answeredMs !== null, `${m.instance} does not answer on ${m.to}`);
    }
    assert.ok(!lab.nextHops(h.rack, `${s.vip}/32`).includes(h.underlayIp), 'the failed host is still a VIP next hop at its ToR');
    const web1 = e.moves.find((m) => m.instance === 'web1');
    assert.ok(web1, 'web1 was on the failed host');
    const to = host(web1.to);
    assert.ok(lab.nextHops(to.rack, `${s.vip}/32`).includes(to.underlayIp), `web1's new host ${to.name} is no VIP next hop at ${to.rack}`);

    // What the API says now: the host is down, nothing is on it, and placement will not use it.
    const hosts = JSON.parse((await cli(['host', 'list'])).stdout) as { name: string; state: string }[];
    assert.equal(hosts.find((x) => x.name === h.name)?.state, 'down');
    assert.deepEqual(JSON.parse((await cli(['instance', 'list', '--host', h.name])).stdout), []);
    const pinned = await cli(['instance', 'migrate', 't1vm1', '--to', h.name], [1]);
    assert.match(pinned.stderr, new RegExp(`error: host ${h.name} is down; only active hosts take instances`));
    // The emptiest host now, so `spread` would pick it were it not down.
    const site = JSON.parse((await cli(['instance', 'get', 't1vm1'])).stdout).siteId as string;
    const siteHosts = (JSON.parse((await cli(['host', 'list', '--site', site])).stdout) as { name: string }[]).map((x) => x.name);
    const probes: { id: string; hostId: string }[] = [];
    for (let i = 0; i < 2; i++)
      probes.push(JSON.parse((await cli(['instance', 'create', `probe${i}`, '--site', site, '--tenant', 't1', '--net', 'private'])).stdout));
    const names = new Map((JSON.parse((await cli(['host', 'list'])).stdout) as { id: string; name: string }[]).map((x) => [x.id, x.name]));
    for (const p of probes) {
      assert.notEqual(names.get(p.hostId), h.name, 'placement put a new instance on the down host');
      await cli(['instance', 'delete', p.id]);
    }
    assert.ok(siteHosts.includes(h.name));
    s = await lab.status();
    for (const m of e.moves) assert.equal(where(m.instance), m.to);
    assert.deepEqual(s.faults, [`host ${h.name} (evacuated)`]);
    const twice = await weft(['lab', 'evacuate', h.name, '--name', NAME], [1]);
    assert.match(twice.stderr, /error: host .* is evacuated already/);
    await lab.checkFails(/FAIL +no fault in place: still failed: host/);

    const r = await lab.json<FaultReport>(['heal', 'host', h.name]);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.ok(
      r.done.some((d) => /active again in the API/.test(d)),
      r.done.join('\n'),
    );
    const after = JSON.parse((await cli(['host', 'list'])).stdout) as { name: string; state: string }[];
    assert.equal(after.find((x) => x.name === h.name)?.state, 'active');
    await lab.checkPasses(t);
  });
});

describe('weft lab on PostgreSQL: two server replicas, one killed mid-run', {
  skip: !root ? 'needs root (network namespaces)' : findPgBin() ? false : 'PostgreSQL is not installed',
}, () => {
  const NAME = 'wlp';
  const lab = labCli(NAME);
  let pg: PgCluster;
  let s: LabState;

  before(async () => {
    pg = await startPgCluster({ fsync: false });
    await weft(['lab', 'down', '--name', NAME], [1]);
    const up = await weft(['lab', 'up', '--name', NAME, '--tenants', '2', '--instances', '8', '--db', pg.url]);
    assert.match(up.stdout, /^export WEFT_API=http:\/\/127\.0\.0\.1:\d+ /m);
    s = await lab.status();
  });
  after(async () => {
    await lab.down();
    pg?.stop();
  });

  test('agents spread across both; replica 1 killed while instances are created through both: nothing acknowledged lost, every agent at the head, no ping lost', async (t) => {
    assert.equal(s.servers?.length, 2);
    assert.match(s.db ?? '', /^postgres:\/\//);
    const on = (n: number) => (s.agents ?? []).filter((a) => a.connected && a.server === n).length;
    assert.ok(on(1) > 0 && on(2) > 0, `agents spread across both replicas: ${JSON.stringify(s.agents)}`);
    assert.equal(on(1) + on(2), s.hosts.length);
    await lab.checkPasses(t);

    const apis = (s.servers ?? []).map((x) => new ApiClient(x.api, readSecretFile('tokenFile', s.tokenFile as string)));
    const [a1, a2] = apis as [ApiClient, ApiClient];
    const site = (await a2.get<{ siteId: string }>('/v1/instances/t1vm1')).siteId;
    // Instances created through both replicas, one every 20 ms, while replica 1 is killed.
    const acked: { id: string; name: string; via: number }[] = [];
    const refused: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const via = i % 2;
        const name = `w${i}`;
        try {
          const r = await (apis[via] as ApiClient).post<{ id: string }>('/v1/instances', {
            tenant: 't1',
            name,
            site,
            size: 'small',
            ports: [{ network: 'private' }],
          });
          acked.push({ id: r.id, name, via: via + 1 });
        } catch (e) {
          refused.push(`${name} via server ${via + 1}: ${(e as Error).message}`);
        }
        await sleep(20);
      }
    })();
    await sleep(500);
    const f = await lab.json<FaultReport>(['fail', 'server', '1']);
    writing = false;
    await writer;
    t.diagnostic(`fail server 1: ${timing(f)}; pings ${pingLine(f.pings)}`);
    t.diagnostic(`${acked.length} instances acknowledged (${acked.filter((x) => x.via === 1).length} through server 1), ${refused.length} refused`);
    assert.equal(f.ok, true, JSON.stringify(f));
    assert.equal(f.pings?.[0]?.lost, 0, JSON.stringify(f.pings));
    assert.ok(acked.filter((x) => x.via === 1).length > 0, 'some went through server 1 before it died');
    // Only server 1 refused anything, and only by being gone: no answer, so nothing was acknowledged.
    assert.ok(refused.length > 0 && refused.every((r) => /via server 1: cannot reach the API/.test(r)), refused.join('\n'));

    // Nothing acknowledged is lost: replica 2 has every one, and every agent applied the head.
    for (const x of acked) assert.equal((await a2.get<{ name: string }>(`/v1/instances/${x.id}`)).name, x.name);
    const agents = await a2.get<{ head: number; items: { hostId: string; appliedVersion: number }[] }>('/v1/agents');
    assert.equal(agents.items.length, s.hosts.length, 'every agent on server 2');
    assert.ok(
      agents.items.every((a) => a.appliedVersion >= agents.head),
      JSON.stringify(agents),
    );
    const log = await a2.get<{ items: { version: number }[]; head: number }>('/v1/changes?after=0&limit=1000');
    assert.deepEqual(
      log.items.map((c) => c.version),
      log.items.map((_, i) => i + 1),
      'the change log is gap-free',
    );
    s = await lab.status();
    assert.equal(s.servers?.[0]?.up, false);
    assert.ok(
      s.agents?.every((a) => a.connected && a.server === 2),
      JSON.stringify(s.agents),
    );
    await lab.checkFails(/FAIL +no fault in place: still failed: server 1/);

    // The instances without a VM go again, through the survivor, before server 1 comes back.
    for (const x of acked) await a2.delete(`/v1/instances/${x.id}`);
    const h = await lab.json<FaultReport>(['heal', 'server', '1']);
    t.diagnostic(`heal server 1: ${timing(h)}; pings ${pingLine(h.pings)}`);
    assert.equal(h.ok, true, JSON.stringify(h));
    assert.equal(h.pings?.[0]?.lost, 0, `pings lost while server 1 was down: ${JSON.stringify(h.pings)}`);
    // Server 1 follows what server 2 wrote while it was down.
    assert.equal((await a1.get<{ items: unknown[] }>(`/v1/instances?name=${acked[0]?.name}`)).items.length, 0);
    s = await lab.status();
    assert.equal(s.servers?.[0]?.up, true);
    await lab.checkPasses(t);
  });
});
