import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeftError } from './errors.js';
import { checkImage, checkVmSettings, migrationUriOf, VM_DEFAULTS } from './profile.js';

const refused = (f: () => unknown, field: string, part: RegExp) =>
  assert.throws(f, (e: unknown) => e instanceof WeftError && e.code === 'E_INVALID_ARG' && e.field === field && part.test(e.message), field);

test('checkImage takes image names and nothing that makes a path', () => {
  for (const ok of ['debian-12', 'ubuntu-24.04', 'img_1+2', 'A']) assert.equal(checkImage('image', ok), ok);
  for (const bad of ['', '../etc/shadow', 'a/b', '.hidden', '-x', 'a..b', 'a b', 'x'.repeat(129), 5, null])
    refused(() => checkImage('image', bad), 'image', /must be an image name/);
});

test('checkVmSettings applies a patch over the defaults or a base, each field checked', () => {
  assert.deepEqual(checkVmSettings('vm', {}), VM_DEFAULTS);
  const a = checkVmSettings('vm', { dnsServers: ['192.0.2.53', '2001:DB8::53'], sharedStorage: true });
  assert.deepEqual(a.dnsServers, ['192.0.2.53', '2001:db8::53'], 'canonical addresses');
  assert.equal(a.sharedStorage, true);
  const b = checkVmSettings('vm', { imagePool: 'images', arpTimeoutMs: 60_000 }, a);
  assert.deepEqual(b, { ...a, imagePool: 'images', arpTimeoutMs: 60_000 }, 'the base is kept where the patch says nothing');
  assert.equal(checkVmSettings('vm', { imagePool: null }, b).imagePool, null);
  assert.deepEqual(VM_DEFAULTS.dnsServers, [], 'the defaults are not changed by a patch');

  refused(() => checkVmSettings('vm', { dnsServers: ['1.1.1.1', '8.8.8.8', '9.9.9.9', '8.8.4.4'] }), 'vm.dnsServers', /at most 3/);
  refused(() => checkVmSettings('vm', { dnsServers: ['x'] }), 'vm.dnsServers[0]', /IPv4 or IPv6/);
  refused(() => checkVmSettings('vm', { dnsServers: ['1.1.1.1', '1.1.1.1'] }), 'vm.dnsServers', /repeat/);
  refused(() => checkVmSettings('vm', { imagePath: 'relative/{image}' }), 'vm.imagePath', /absolute path/);
  refused(() => checkVmSettings('vm', { imagePath: '/var/lib/../../etc/{image}' }), 'vm.imagePath', /no "\.\." segment/);
  refused(() => checkVmSettings('vm', { imagePath: '/images/{name}.qcow2' }), 'vm.imagePath', /\{image\} and \{instance\}/);
  refused(() => checkVmSettings('vm', { imagePool: 'a/b' }), 'vm.imagePool', /storage pool name/);
  refused(() => checkVmSettings('vm', { arpTimeoutMs: 10 }), 'vm.arpTimeoutMs', /1000\.\.86400000/);
  refused(() => checkVmSettings('vm', { ndTimeoutMs: 1.5e3 + 0.5 }), 'vm.ndTimeoutMs', /integer/);
  refused(() => checkVmSettings('vm', { sharedStorage: 'yes' }), 'vm.sharedStorage', /true or false/);
  refused(() => checkVmSettings('vm', { bogus: 1 } as never), 'vm.bogus', /is not a VM setting/);
});

test('migrationUri: a qemu URI naming the destination by {address} or {host}; rendered only with shared storage, IPv6 in brackets', () => {
  const vm = checkVmSettings('vm', { sharedStorage: true, migrationUri: 'qemu+ssh://root@{host}.hv.example/system' });
  assert.equal(migrationUriOf(vm, { name: 'r1h2', underlayIp: '192.0.2.2' }), 'qemu+ssh://root@r1h2.hv.example/system');
  const tls = checkVmSettings('vm', { sharedStorage: true });
  assert.equal(migrationUriOf(tls, { name: 'r1h2', underlayIp: '192.0.2.2' }), 'qemu+tls://192.0.2.2/system', 'the default');
  assert.equal(migrationUriOf(tls, { name: 'r1h2', underlayIp: '2001:db8::2' }), 'qemu+tls://[2001:db8::2]/system');
  assert.equal(migrationUriOf(VM_DEFAULTS, { name: 'r1h2', underlayIp: '192.0.2.2' }), null, 'moves are cold without shared storage');
  for (const bad of ['qemu+tls://192.0.2.2/system', 'test:///{address}', 'qemu+tls://{address}/system{name}', "qemu+tls://{address}/sys'tem", 7])
    refused(() => checkVmSettings('vm', { migrationUri: bad }), 'vm.migrationUri', /libvirt qemu URI/);
});
