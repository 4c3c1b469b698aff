// The VM profile renderer: golden files for each case of
// test/support/profile-cases.ts (UPDATE_GOLDEN=1 rewrites them), what
// cloud-init's YAML 1.1 parser reads from them, determinism, and the errors
// of inputs that cannot have a profile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import { assertGolden } from '../../test/support/golden.js';
import { PROFILE_CASES } from '../../test/support/profile-cases.js';
import { WeftError } from './errors.js';
import type { ProfileInput } from './profile.js';
import { diskFile, domainName, renderProfile, seedPath, xmlEscape } from './profile-render.js';

const base = PROFILE_CASES['overlay-two-ports'] as ProfileInput;
const routed = PROFILE_CASES.routed as ProfileInput;
const variant = (f: (i: ProfileInput) => void): ProfileInput => {
  const i = structuredClone(base);
  f(i);
  return i;
};

for (const [name, input] of Object.entries(PROFILE_CASES)) {
  test(`golden profile ${name}`, () => {
    const p = renderProfile(input);
    assertGolden(`profile/${name}/domain.xml`, p.domain);
    assertGolden(`profile/${name}/meta-data`, p.metaData);
    assertGolden(`profile/${name}/network-config`, p.networkConfig);
    assertGolden(`profile/${name}/user-data`, p.userData);
  });
}

test('deterministic: the same input gives the same bytes, and the input is left as it was', () => {
  for (const input of Object.values(PROFILE_CASES)) {
    const before = structuredClone(input);
    const a = renderProfile(input);
    assert.deepEqual(renderProfile(structuredClone(input)), a);
    assert.deepEqual(input, before);
  }
});

test('YAML as cloud-init (PyYAML, YAML 1.1) reads it: MACs, addresses and names stay strings', () => {
  const p = renderProfile(base);
  const net = parse(p.networkConfig, { version: '1.1' });
  assert.equal(net.version, 2);
  assert.deepEqual(Object.keys(net.ethernets), ['eth0', 'eth1']);
  assert.deepEqual(net.ethernets.eth0.match, { macaddress: '02:00:0a:0a:00:05' });
  assert.deepEqual(net.ethernets.eth0.addresses, ['10.10.0.5/24', '2001:db8:10::5/64']);
  assert.deepEqual(net.ethernets.eth0.routes, [{ to: '0.0.0.0/0', via: '10.10.0.1' }]);
  assert.equal(net.ethernets.eth0.gateway6, '2001:db8:10::1');
  assert.deepEqual(net.ethernets.eth0.nameservers, { addresses: ['10.10.0.53', '2001:db8:10::53'] });
  // The narrowest subnet that holds it; no gateway, no routes; DNS on the first port only.
  assert.deepEqual(net.ethernets.eth1.addresses, ['192.168.20.7/26']);
  assert.equal(net.ethernets.eth1.routes, undefined);
  assert.equal(net.ethernets.eth1.nameservers, undefined);
  for (const eth of Object.values(net.ethernets) as Record<string, unknown>[]) {
    assert.equal(eth.dhcp4, false);
    assert.equal(eth.dhcp6, false);
    assert.equal(eth['accept-ra'], false);
  }
  const user = parse(p.userData, { version: '1.1' });
  assert.ok(p.userData.startsWith('#cloud-config\n'));
  assert.deepEqual(user.ssh_authorized_keys, base.sshKeys);
  assert.equal(user.hostname, 'web1');
  assert.equal(user.preserve_hostname, false);
  assert.match(user.write_files[0].content, /^net\.ipv4\.neigh\.default\.base_reachable_time_ms = 14400000$/m);
  assert.deepEqual(user.runcmd, ['sysctl --system']);
  assert.deepEqual(parse(p.metaData, { version: '1.1' }), { 'instance-id': base.instance.id, 'local-hostname': 'web1' });
});

test('routed: /32 and /128, default routes via 169.254.0.1 on-link and fe80::1', () => {
  const eth0 = parse(renderProfile(routed).networkConfig, { version: '1.1' }).ethernets.eth0;
  assert.deepEqual(eth0.addresses, ['203.0.113.7/32', '2001:db8:100::7/128']);
  assert.deepEqual(eth0.routes, [{ to: '0.0.0.0/0', via: '169.254.0.1', 'on-link': true }]);
  assert.equal(eth0.gateway6, 'fe80::1');
  // Only the families it has.
  const v6only = structuredClone(routed);
  (v6only.ports[0] as { ipv4: string | null }).ipv4 = null;
  const e = parse(renderProfile(v6only).networkConfig).ethernets.eth0;
  assert.deepEqual(e.addresses, ['2001:db8:100::7/128']);
  assert.equal(e.routes, undefined);
  assert.equal(e.gateway6, 'fe80::1');
});

test('domain: named weft-<id>, the type chosen, the seed beside the console socket, every value escaped', () => {
  const kvm = renderProfile(base).domain;
  assert.match(kvm, /^<domain type='kvm'>\n/);
  assert.match(kvm, new RegExp(`<name>${domainName(base.instance.id)}</name>`));
  assert.match(kvm, /<cpu mode='host-model'\/>/);
  for (const t of ['qemu', 'test'] as const) {
    const d = renderProfile(base, { domainType: t }).domain;
    assert.match(d, new RegExp(`^<domain type='${t}'>\n`));
    assert.doesNotMatch(d, /<cpu /);
  }
  assert.equal(seedPath('/var/lib/weft/instances/x/console.sock'), '/var/lib/weft/instances/x/seed.img');
  assert.equal(seedPath('/console.sock'), '/seed.img');
  assert.equal(xmlEscape(`a&b<c>d'e"f`), 'a&amp;b&lt;c&gt;d&apos;e&quot;f');
  const esc = renderProfile(PROFILE_CASES['xml-escaping'] as ProfileInput).domain;
  assert.match(esc, /<source file='\/srv\/images\/r\+d\/tom\+jerry_1\.0\/0190a1b2-0000-7000-8000-00000000e004\.raw'\/>/);
  // Its own disk, an overlay on the (raw) image.
  assert.match(esc, /<backingStore type='file'>\n {8}<format type='raw'\/>\n {8}<source file='\/srv/);
  assert.equal(diskFile('/i/{image}/{instance}/{image}', 'a$&{instance}', 'ID'), '/i/a$&{instance}/ID/a$&{instance}');
  // A path without {image} is one image for every instance: each still writes its own overlay only.
  const fixed = renderProfile(variant((i) => (i.vm.imagePath = '/srv/golden.qcow2'))).domain;
  assert.match(
    fixed,
    /<source file='\/var\/lib\/weft\/instances\/[0-9a-f-]+\/disk\.qcow2'\/>\n {6}<backingStore type='file'>\n {8}<format type='qcow2'\/>\n {8}<source file='\/srv\/golden\.qcow2'\/>/,
  );
});

function throwsInvalid(input: ProfileInput, field: string, message: RegExp, options?: Parameters<typeof renderProfile>[1]): void {
  assert.throws(
    () => renderProfile(input, options),
    (e: unknown) => {
      assert.ok(e instanceof WeftError, `a WeftError, not ${e}`);
      assert.equal(e.code, 'E_INVALID_ARG');
      assert.equal(e.field, field);
      assert.match(e.message, message);
      return true;
    },
  );
}

test('an instance without an image has no profile: the error says how to give it one', () => {
  throwsInvalid(
    variant((i) => (i.instance.image = null)),
    'image',
    /^invalid image null: instance web1 has no image: set one \(weft instance update web1 --image NAME\) before it can have a profile$/,
  );
});

test('an overlay address in none of its network’s subnets names the port, the network and the subnets', () => {
  throwsInvalid(
    variant((i) => ((i.ports[1] as { ipv4: string | null }).ipv4 = '10.99.0.7')),
    'ports[1].ipv4',
    /^invalid ports\[1\]\.ipv4 "10\.99\.0\.7": port 0190a1b2-0000-7000-8000-00000000b002 has an address in none of network back's IPv4 subnets \(192\.168\.0\.0\/16, 192\.168\.20\.0\/26\)$/,
  );
  throwsInvalid(
    variant((i) => ((i.ports[0] as { ipv6: string | null }).ipv6 = '2001:db8:99::5')),
    'ports[0].ipv6',
    /port 0190a1b2-0000-7000-8000-00000000b001 has an address in none of network front's IPv6 subnets \(2001:db8:10::\/64\)$/,
  );
  throwsInvalid(
    variant((i) => ((i.ports[1] as { ipv6: string | null }).ipv6 = '2001:db8:99::5')),
    'ports[1].ipv6',
    /in none of network back's IPv6 subnets \(2001:db8:20::\/64\)$/,
  );
  throwsInvalid(
    variant((i) => ((i.ports[0] as { ipv4: string | null }).ipv4 = '2001:db8:10::9')),
    'ports[0].ipv4',
    /must be an IPv4 address$/,
  );
});

test('at most 3 resolvers, each an address', () => {
  throwsInvalid(
    variant((i) => (i.vm.dnsServers = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'])),
    'vm.dnsServers',
    /^invalid vm\.dnsServers \["10\.0\.0\.1","10\.0\.0\.2","10\.0\.0\.3","10\.0\.0\.4"\]: must be at most 3 IPv4 or IPv6 addresses$/,
  );
  throwsInvalid(
    variant((i) => (i.vm.dnsServers = ['resolver.example'])),
    'vm.dnsServers[0]',
    /must be an IPv4 or IPv6 address/,
  );
});

test('what would break the XML, the YAML or libvirt is refused, naming the field', () => {
  throwsInvalid(
    variant((i) => (i.instance.image = 'debian\n12')),
    'image',
    /must be an image name/,
  );
  // A path an image could make, whoever sent it: the agent checks what the server checked.
  throwsInvalid(
    variant((i) => (i.instance.image = '../../etc/shadow')),
    'image',
    /no "\.\."/,
  );
  throwsInvalid(
    variant((i) => (i.vm.imagePath = '/srv/../etc/{image}')),
    'vm.imagePath',
    /no "\.\." segment/,
  );
  throwsInvalid(
    variant((i) => (i.sshKeys = ['ssh-ed25519 AAAA a\u2028b'])),
    'sshKeys[0]',
    /without control characters or line breaks/,
  );
  throwsInvalid(
    variant((i) => (i.vm.imagePath = 'images/{image}.qcow2')),
    'vm.imagePath',
    /^invalid vm\.imagePath "images\/\{image\}\.qcow2": must be an absolute path/,
  );
  throwsInvalid(
    variant((i) => (i.consoleSocket = 'console.sock')),
    'consoleSocket',
    /must be an absolute path/,
  );
  throwsInvalid(
    variant((i) => (i.instance.id = 'web1')),
    'instance.id',
    /must be an id/,
  );
  throwsInvalid(
    variant((i) => ((i.ports[0] as { mac: string }).mac = '01:00:5e:00:00:01')),
    'ports[0].mac',
    /unicast/,
  );
  throwsInvalid(
    variant((i) => ((i.ports[0] as { ifname: string }).ifname = "wp0'x")),
    'ports[0].ifname',
    /must be 1\.\.15/,
  );
  throwsInvalid(
    variant((i) => (i.instance.cpus = 0)),
    'instance.cpus',
    /must be an integer 1\.\./,
  );
  throwsInvalid(base, 'domainType', /must be one of kvm, qemu, test/, { domainType: 'xen' as 'kvm' });
});
