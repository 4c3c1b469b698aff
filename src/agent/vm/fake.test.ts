// FakeVmHost on the VmHost contract (test/support/vm-host-contract.ts, which
// test/integration/virsh.test.ts runs on libvirt), and what only the fake
// does: failures on demand, its log; and the domain XML reader both use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fakeVmImpl, testDomainXml, vmHostContract } from '../../../test/support/vm-host-contract.js';
import { FakeVmHost } from './fake.js';
import { domainChild } from './vm-host.js';

vmHostContract('VmHost contract', [fakeVmImpl]);

test('FakeVmHost: failNext fails the next operations of that kind only, changing nothing', async () => {
  const h = new FakeVmHost();
  h.failNext('start');
  await h.define('weft-a', testDomainXml('weft-a'));
  await assert.rejects(h.start('weft-a'), /domain weft-a: start: injected failure/);
  assert.equal((await h.list()).get('weft-a'), 'stopped');
  await h.start('weft-a');
  assert.equal((await h.list()).get('weft-a'), 'running');
  h.failNext('list');
  await assert.rejects(h.list(), { code: 'E_DATAPLANE' });
  assert.deepEqual(h.log, ['define weft-a', 'start weft-a', 'list', 'start weft-a', 'list', 'list']);
});

test('domainChild: the root <domain>’s own child only, entities decoded', () => {
  const xml = `<?xml version="1.0"?>
<!-- <name>weft-comment</name> -->
<domain type='kvm' xmlns:weft="https://example.org/weft">
  <metadata><weft:name>weft-meta</weft:name><name>weft-deep</name></metadata>
  <cpu mode='custom'><model>x</model><name>weft-cpu</name></cpu>
  <description><![CDATA[<name>weft-cdata</name>]]></description>
  <empty/>
  <name>weft-a&amp;b&#45;c&#x2d;d</name>
  <name>weft-second</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
</domain>`;
  assert.equal(domainChild(xml, 'name'), 'weft-a&b-c-d');
  assert.equal(domainChild(xml, 'uuid'), '11111111-2222-3333-4444-555555555555');
  assert.equal(domainChild(xml, 'empty'), '');
  assert.equal(domainChild(xml, 'title'), null);
  assert.equal(domainChild('<network><name>weft-a</name></network>', 'name'), null);
  assert.equal(domainChild('<domain><name>weft-a</name></domain><domain><name>weft-b</name></domain>', 'name'), 'weft-a');
  assert.equal(domainChild('<domain><devices><name>weft-a</name></devices></domain>', 'name'), null);
  assert.equal(domainChild('', 'name'), null);
  assert.equal(domainChild('<domain><name>weft-&#xFFFFFF;</name></domain>', 'name'), 'weft-&#xFFFFFF;');
  assert.equal(domainChild(`<domain a="x>y" b='<name>'><name>weft-q</name></domain>`, 'name'), 'weft-q');
});
