// Every golden VM profile (test/fixtures/profile/<case>/) checked with the
// tools that will read it: libvirt's schema (virt-xml-validate) and its
// test driver (virsh -c test:///default defines the domain), cloud-init
// 22.4's schema check of the user-data, and its networkd renderer
// (net-convert), whose .network files are compared with the case's
// ProfileInput port by port. Each check is shown to refuse a broken file,
// so it cannot pass anything.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cidrContains, parseCidr, parseIp } from '../../src/model/addr.js';
import type { ProfileInput } from '../../src/model/profile.js';
import { domainName, ROUTED_GATEWAY4, ROUTED_GATEWAY6, renderProfile } from '../../src/model/profile-render.js';
import { run } from '../../src/sys/exec.js';
import { fixture } from '../support/golden.js';
import { PROFILE_CASES } from '../support/profile-cases.js';

const missing = ['virt-xml-validate', 'xmllint', 'cloud-init', 'virsh'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
const skip = missing.length > 0 && `not on PATH: ${missing.join(', ')} (scripts/setup.sh installs them)`;

const CASES = Object.entries(PROFILE_CASES);
const golden = (name: string, part: string): string => readFileSync(fixture(`profile/${name}/${part}`), 'utf8');

/** Runs a tool that may refuse its input: the exit code, and what it said. */
async function check(cmd: string, args: string[], input?: string): Promise<{ code: number; said: string }> {
  const r = await run(cmd, args, { okCodes: [1, 2, 3, 4, 5], timeoutMs: 60_000, input });
  return { code: r.code, said: `${r.stdout}${r.stderr}`.trim() };
}

interface Section {
  name: string;
  entries: [string, string][];
}

/** A systemd unit file as its sections in order (a section may repeat: [Address], [Route]). */
function unitSections(text: string): Section[] {
  const out: Section[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) out.push({ name: head[1] as string, entries: [] });
    else {
      const eq = line.indexOf('=');
      assert.ok(eq > 0 && out.length > 0, `a key=value line in a section: ${line}`);
      out.at(-1)?.entries.push([line.slice(0, eq), line.slice(eq + 1)]);
    }
  }
  return out;
}
const valuesOf = (sections: Section[], name: string, key: string): string[] =>
  sections.filter((s) => s.name === name).flatMap((s) => s.entries.filter(([k]) => k === key).map(([, v]) => v));

/** What each port's guest config must say, worked out from the input (not from the rendered YAML). */
function expected(input: ProfileInput, i: number) {
  const p = input.ports[i];
  assert.ok(p);
  const addresses: string[] = [];
  const routes: string[] = [];
  for (const [value, family] of [
    [p.ipv4, 4],
    [p.ipv6, 6],
  ] as const) {
    if (value === null) continue;
    const ip = parseIp('ip', value);
    if (p.network.kind === 'routed') {
      addresses.push(`${ip.text}/${family === 4 ? 32 : 128}`);
      routes.push(family === 4 ? `default via ${ROUTED_GATEWAY4}` : `default via ${ROUTED_GATEWAY6}`);
      continue;
    }
    const prefixes = p.network.subnets
      .map((s) => parseCidr('subnet', s))
      .filter((c) => cidrContains(c, family, ip.n))
      .map((c) => c.prefix);
    addresses.push(`${ip.text}/${Math.max(...prefixes)}`);
    const gw = family === 4 ? p.network.gateway4 : p.network.gateway6;
    if (gw !== null) routes.push(`default via ${gw}`);
  }
  return { mac: p.mac, mtu: String(p.network.mtu), addresses: addresses.sort(), routes: routes.sort() };
}

describe('VM profiles with the real tools', { skip }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-profile-tools-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const write = (name: string, text: string): string => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  test('the goldens are the cases rendered (a stale golden would check nothing)', () => {
    assert.deepEqual(readdirSync(fixture('profile')).sort(), CASES.map(([n]) => n).sort());
    for (const [name, input] of CASES) assert.equal(golden(name, 'domain.xml'), renderProfile(input).domain, name);
  });

  test('every domain passes libvirt’s schema (virt-xml-validate); a broken one does not', async () => {
    for (const [name] of CASES) {
      const r = await check('virt-xml-validate', [fixture(`profile/${name}/domain.xml`), 'domain']);
      assert.equal(r.code, 0, `${name}: ${r.said}`);
    }
    const broken = golden('routed', 'domain.xml').replace("<interface type='ethernet'>", "<interface type='ethernat'>");
    const r = await check('virt-xml-validate', [write('broken-domain.xml', broken), 'domain']);
    assert.notEqual(r.code, 0, `virt-xml-validate accepted an interface of type ethernat: ${r.said}`);
  });

  test('libvirt’s test driver defines every domain rendered for it, with its vCPUs and memory', async () => {
    for (const [name, input] of CASES) {
      const f = write(`${name}-test.xml`, renderProfile(input, { domainType: 'test' }).domain);
      const dom = domainName(input.instance.id);
      const r = await check('virsh', ['-c', 'test:///default'], `define ${f}\ndominfo ${dom}\n`);
      assert.doesNotMatch(r.said, /error:/, `${name}: ${r.said}`);
      assert.match(r.said, new RegExp(`Domain '${dom}' defined from`), name);
      assert.match(r.said, new RegExp(`^UUID: +${input.instance.id}$`, 'm'), name);
      assert.match(r.said, new RegExp(`^CPU\\(s\\): +${input.instance.cpus}$`, 'm'), name);
      assert.match(r.said, new RegExp(`^Max memory: +${input.instance.memoryMb * 1024} KiB$`, 'm'), name);
    }
    // And refuses one it cannot run (the check is not a formality).
    const f = write('broken-test.xml', renderProfile(PROFILE_CASES.routed as ProfileInput, { domainType: 'test' }).domain.replace('<vcpu', '<vcpus'));
    const r = await check('virsh', ['-c', 'test:///default'], `define ${f}\n`);
    assert.match(r.said, /error:/, `virsh defined a domain with <vcpus>: ${r.said}`);
  });

  test('every user-data passes cloud-init’s schema; a bad one does not', async () => {
    for (const [name] of CASES) {
      const r = await check('cloud-init', ['schema', '-c', fixture(`profile/${name}/user-data`)]);
      assert.equal(r.code, 0, `${name}: ${r.said}`);
      assert.match(r.said, /Valid cloud-config/, name);
    }
    const r = await check('cloud-init', ['schema', '-c', write('bad-user-data', '#cloud-config\nssh_authorized_keys: 5\n')]);
    assert.notEqual(r.code, 0, `cloud-init schema accepted ssh_authorized_keys: 5: ${r.said}`);
    assert.match(r.said, /ssh_authorized_keys: 5 is not of type 'array'/);
  });

  test('every network-config becomes, for networkd, what each port needs: MAC, MTU, addresses, default routes, no DHCP', async () => {
    for (const [name, input] of CASES) {
      const out = join(dir, `net-${name}`);
      mkdirSync(out);
      const r = await check('cloud-init', [
        'devel',
        'net-convert',
        '-p',
        fixture(`profile/${name}/network-config`),
        '-k',
        'yaml',
        '-d',
        out,
        '-D',
        'debian',
        '-O',
        'networkd',
      ]);
      assert.equal(r.code, 0, `${name}: ${r.said}`);
      const netdir = join(out, 'etc/systemd/network');
      assert.deepEqual(readdirSync(netdir).sort(), input.ports.map((_, i) => `10-cloud-init-eth${i}.network`).sort(), `${name}: one .network per port`);
      input.ports.forEach((_, i) => {
        const at = `${name} eth${i}`;
        const want = expected(input, i);
        const s = unitSections(readFileSync(join(netdir, `10-cloud-init-eth${i}.network`), 'utf8'));
        assert.deepEqual(valuesOf(s, 'Match', 'MACAddress'), [want.mac], at);
        assert.deepEqual(valuesOf(s, 'Match', 'Name'), [`eth${i}`], at);
        assert.deepEqual(valuesOf(s, 'Link', 'MTUBytes'), [want.mtu], at);
        assert.deepEqual(valuesOf(s, 'Network', 'DHCP'), ['no'], at);
        assert.deepEqual(valuesOf(s, 'Address', 'Address').sort(), want.addresses, at);
        // A [Route] with a Gateway and no Destination is a default route too (how networkd writes gateway6).
        const routes = s
          .filter((x) => x.name === 'Route')
          .map((x) => {
            const get = (k: string) => x.entries.find(([key]) => key === k)?.[1];
            const dst = get('Destination');
            assert.ok(dst === undefined || dst === '0.0.0.0/0' || dst === '::/0', `${at}: only default routes, not ${dst}`);
            return `default via ${get('Gateway')}`;
          });
        assert.deepEqual(routes.sort(), want.routes, at);
        const dns = i === 0 && input.vm.dnsServers.length > 0 ? [input.vm.dnsServers.join(' ')] : [];
        assert.deepEqual(valuesOf(s, 'Network', 'DNS'), dns, at);
      });
    }
    // A config cloud-init cannot read is refused, not rendered as nothing.
    const bad = write('bad-network-config', golden('routed', 'network-config').replace('"203.0.113.7/32"', '"203.0.113.700/32"'));
    const out = join(dir, 'net-bad');
    mkdirSync(out);
    const r = await check('cloud-init', ['devel', 'net-convert', '-p', bad, '-k', 'yaml', '-d', out, '-D', 'debian', '-O', 'networkd']);
    assert.notEqual(r.code, 0, `net-convert accepted the address 203.0.113.700/32: ${r.said}`);
    assert.equal(existsSync(join(out, 'etc/systemd/network/10-cloud-init-eth0.network')), false);
  });
});
