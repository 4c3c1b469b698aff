// Unit tests of the lab guest's pure parts: what it reads of a profile, its
// kernel command line, the newc archive and the modules' load order. The
// boot itself is tested by `weft lab up --boot-vm` (test/e2e/weft-lab.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { guestCmdline, guestInit, guestSpec, loadOrder, moduleDepends, newc } from './guest.js';

const fixture = (c: string, f: string) => readFileSync(join(import.meta.dirname, '../../test/fixtures/profile', c, f), 'utf8');
const profile = (c: string) => guestSpec(fixture(c, 'domain.xml'), fixture(c, 'network-config'), fixture(c, 'meta-data'));

test('guestSpec reads the domain and network-config the renderer writes: taps, MACs, MTUs, addresses, gateways, console', () => {
  const s = profile('overlay-two-ports');
  assert.equal(s.name, 'weft-0190a1b2-0000-7000-8000-00000000e001');
  assert.equal(s.memoryMb, 2048);
  assert.equal(s.vcpus, 2);
  assert.equal(s.consoleSocket, '/var/lib/weft/instances/0190a1b2-0000-7000-8000-00000000e001/console.sock');
  assert.deepEqual(s.nics[0], {
    tap: 'wp7c4feda2ec47',
    mac: '02:00:0a:0a:00:05',
    mtu: 1450,
    addresses: ['10.10.0.5/24', '2001:db8:10::5/64'],
    gateway4: '10.10.0.1',
    gateway6: '2001:db8:10::1',
  });
  assert.deepEqual(
    s.nics.map((n) => `${n.tap} ${n.mtu}`),
    ['wp7c4feda2ec47 1450', 'wpa6a09db6585d 8950'],
  );
  // A routed port: its gateways are the link-local ones, on-link.
  const r = profile('routed');
  assert.equal(r.nics.length, 1);
  assert.equal(r.nics[0]?.gateway4, '169.254.0.1');
});

test('guestSpec names what is missing: a domain without its serial socket, a MAC network-config does not match', () => {
  const xml = fixture('overlay-two-ports', 'domain.xml');
  const net = fixture('overlay-two-ports', 'network-config');
  const meta = fixture('overlay-two-ports', 'meta-data');
  assert.throws(() => guestSpec(xml.replace(/<serial[\s\S]*?<\/serial>/, ''), net, meta), /domain\.xml.*serial/);
  assert.throws(() => guestSpec(xml, net.replaceAll('02:00:0a:0a:00:05', '02:00:0a:0a:00:99'), meta), /network-config.*02:00:0a:0a:00:05.*no ethernet/);
  assert.throws(() => guestSpec(xml, 'version: 1\n', meta), /network-config.*version 2/);
  assert.throws(() => guestSpec(xml, net.replace('10.10.0.5/24', '10.10.0.x/24'), meta), /network-config 02:00:0a:0a:00:05 address/);
});

test('the command line carries each NIC for /init, which configures them by MAC', () => {
  const s = profile('overlay-two-ports');
  const line = guestCmdline(s);
  assert.match(line, /^console=ttyS0 /);
  assert.match(line, / weft\.n0=02:00:0a:0a:00:05,1450,10\.10\.0\.5\/24\+2001:db8:10::5\/64,10\.10\.0\.1,2001:db8:10::1( |$)/);
  assert.match(line, / weft\.n1=02:00:c0:a8:14:07,8950,192\.168\.20\.7\/26,,( |$)/);
  const init = guestInit(['virtio', 'virtio_net']);
  assert.match(init, /^#!\/bin\/busybox sh\n/);
  assert.match(init, /for m in virtio virtio_net; do insmod/);
  assert.match(init, /weft-guest ready/);
});

test('newc: headers, names and data padded to 4 bytes, a trailer; the kernel reads exactly this', () => {
  const a = newc([
    { path: 'bin', dir: true },
    { path: '/init', data: Buffer.from('#!/bin/sh\n'), perm: 0o755 },
  ]);
  const entries: { name: string; mode: number; size: number }[] = [];
  let at = 0;
  while (at < a.length) {
    assert.equal(a.subarray(at, at + 6).toString(), '070701', `magic at ${at}`);
    const field = (i: number) => Number.parseInt(a.subarray(at + 6 + i * 8, at + 14 + i * 8).toString(), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const name = a.subarray(at + 110, at + 110 + nameSize - 1).toString();
    assert.equal(a[at + 110 + nameSize - 1], 0, 'the name ends in NUL');
    at = Math.ceil((at + 110 + nameSize) / 4) * 4;
    at = Math.ceil((at + size) / 4) * 4;
    entries.push({ name, mode, size });
  }
  assert.equal(at, a.length);
  assert.deepEqual(entries, [
    { name: 'bin', mode: 0o040755, size: 0 },
    { name: 'init', mode: 0o100755, size: 10 },
    { name: 'TRAILER!!!', mode: 0, size: 0 },
  ]);
});

test('modules load after what they depend on (from their .modinfo); a missing one is named', () => {
  const ko = (deps: string) => Buffer.concat([Buffer.from('\x7fELF...'), Buffer.from(`\0license=GPL\0depends=${deps}\0vermagic=6.1\0`)]);
  assert.deepEqual(moduleDepends(ko('virtio_ring,virtio,net_failover')), ['virtio_ring', 'virtio', 'net_failover']);
  assert.deepEqual(moduleDepends(ko('')), []);
  const deps = new Map([
    ['virtio_net', ['virtio_ring', 'virtio', 'net_failover']],
    ['virtio_pci', ['virtio_ring', 'virtio']],
    ['virtio', ['virtio_ring']],
    ['virtio_ring', []],
    ['net_failover', ['failover']],
    ['failover', []],
  ]);
  assert.deepEqual(loadOrder(['virtio_pci', 'virtio_net'], deps), ['virtio_ring', 'virtio', 'virtio_pci', 'failover', 'net_failover', 'virtio_net']);
  deps.delete('failover');
  assert.throws(() => loadOrder(['virtio_net'], deps), /module failover is not in .*needed by net_failover.*setup\.sh/);
});
