import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Op, Plan } from '../dataplane.js';
import { JsonItems } from './json-items.js';
import { BatchInput, hasLines, render } from './render.js';

const mac = (i: number) => `02:57:46:00:00:${i.toString(16).padStart(2, '0')}`;
const plan = (ops: Op[]): Plan => ({ ops, waiting: [] });

test('render: device deletions lead the links batch, then creations; each line knows its step', () => {
  const p = plan([
    { op: 'vni.add', vni: { vni: 5000, mtu: 1450, local: '192.0.2.1', lazy: false } },
    { op: 'fdb.set', vni: 5000, mac: mac(2), dst: '192.0.2.2' },
    { op: 'vni.del', vni: 4000 },
    { op: 'neigh.set', vni: 5000, ip: '10.0.0.2', mac: mac(2) },
    { op: 'announce', ifname: 'wp1', vni: 5000, mac: mac(1), ips: ['10.0.0.1'] },
  ]);
  const links = new BatchInput(p, 'links');
  const text = [...links.text()].join('').split('\n');
  assert.deepEqual(text.slice(0, 3), [
    'link del wbr4000',
    'link del wvx4000',
    'link add wvx5000 mtu 1450 type vxlan id 5000 local 192.0.2.1 dstport 4789 nolearning',
  ]);
  assert.equal(links.lines, 8);
  assert.equal(
    [...new BatchInput(p, 'fdb').text()].join(''),
    [
      'link set dev wvx5000 learning off neigh_suppress on',
      `fdb replace ${mac(2)} dev wvx5000 dst 192.0.2.2 self permanent`,
      `fdb replace ${mac(2)} dev wvx5000 master static`,
      '',
    ].join('\n'),
  );
  assert.deepEqual(
    render(p).announce.map((a) => a.op),
    [4],
  );
  assert.equal(hasLines(p, 'neigh'), true);
  assert.equal(hasLines(plan([{ op: 'announce', ifname: 'wp1', vni: 5000, mac: mac(1), ips: [] }]), 'links'), false);
});

test('render: a long batch comes in pieces of whole lines; failures map back to steps, gone deletions do not count', () => {
  const ops: Op[] = [];
  for (let i = 0; i < 2500; i++) ops.push({ op: 'neigh.set', vni: 5000, ip: `10.0.${i >> 8}.${i & 255}`, mac: mac(i & 255) });
  ops.push({ op: 'neigh.del', vni: 5000, ip: '10.9.9.9' });
  const b = new BatchInput(plan(ops), 'neigh');
  const pieces = [...b.text()];
  assert.ok(pieces.length >= 3 && pieces.every((x) => x.endsWith('\n')));
  assert.equal(pieces.join('').split('\n').length - 1, 2501);
  const failures = b.failures(
    ['Error: any valid address is expected', 'Command failed -:1001', 'RTNETLINK answers: No such file or directory', 'Command failed -:2501'].join('\n'),
  );
  assert.deepEqual(failures, [
    { op: 1000, error: 'neigh replace 10.0.3.232 lladdr 02:57:46:00:00:e8 dev wbr5000 nud permanent: Error: any valid address is expected' },
  ]);
});

test('json items: an array taken apart in pieces of any size', () => {
  const items = [{ mac: 'a', flags: ['self'] }, { s: 'x}]"\\' }, [1, [2]], {}];
  const text = JSON.stringify(items, null, 1);
  for (let size = 1; size <= text.length; size += 7) {
    const got: unknown[] = [];
    const j = new JsonItems((x) => got.push(x));
    for (let i = 0; i < text.length; i += size) j.write(text.slice(i, i + size));
    j.end();
    assert.deepEqual(got, items);
  }
  const none = new JsonItems(() => assert.fail('no items'));
  none.end();
  assert.throws(() => new JsonItems(() => {}).write('{"a":1}'), { code: 'E_DATAPLANE', message: /not a JSON array/ });
  const cut = new JsonItems(() => {});
  cut.write('[{"a":1},');
  assert.throws(() => cut.end(), { code: 'E_DATAPLANE', message: /ends early/ });
});
