import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { type Names, referencedIds, render } from './output.js';

const port = {
  id: 'p-1',
  instanceId: 'i-1',
  networkId: 'n-1',
  tenantId: 't-1',
  mac: '02:00:00:00:00:01',
  ipv4: '10.0.0.9',
  ipv6: 'fd00::9',
  interface: 'wp0123456789ab',
};
const vm = {
  id: 'i-1',
  tenantId: 't-1',
  name: 'web1',
  siteId: 's-1',
  hostId: 'h-1',
  size: { cpus: 1, memoryMb: 512, diskGb: 5 },
  state: 'running',
  ports: [port],
};
const names: Names = { tenants: new Map([['t-1', 'acme']]), hosts: new Map([['h-1', 'hv1']]), sites: new Map([['s-1', 'ams1']]) };

test('a table shows other objects by name, an instance its addresses; wide adds ids and more', () => {
  const lines = render('instances', [vm], { format: 'table', names }).split('\n');
  assert.match(lines[0] as string, /^NAME\s+TENANT\s+HOST\s+STATE\s+IPV4\s+IPV6$/);
  assert.match(lines[1] as string, /^web1\s+acme\s+hv1\s+running\s+10\.0\.0\.9\s+fd00::9$/);
  assert.equal(lines[2], '', 'one line per row, ending in a newline');
  const wide = render('instances', [vm], { format: 'wide', names }).split('\n');
  assert.match(wide[0] as string, /^ID\s+NAME\s+TENANT\s+HOST\s+STATE\s+IPV4\s+IPV6\s+SITE\s+SIZE\s+IMAGE\s+MACS$/);
  assert.match(wide[1] as string, /^i-1\s+web1\s+acme\s+hv1\s+running\s+10\.0\.0\.9\s+fd00::9\s+ams1\s+1c\/512M\/5G\s+-\s+02:00:00:00:00:01$/);
});

test('an id whose name could not be read is shown as the id, never dropped', () => {
  const out = render('instances', [vm], { format: 'table', names: { tenants: names.tenants } });
  assert.match(out, /^web1\s+acme\s+h-1\s+running/m);
  assert.match(render('ports', [port], { format: 'table' }), /wp0123456789ab\s+i-1\s+n-1$/m);
});

test('--no-headers leaves the rows only; an empty list prints the header alone, or nothing', () => {
  assert.equal(render('instances', [vm], { format: 'table', names, headers: false }).split('\n')[0]?.startsWith('web1'), true);
  assert.match(render('instances', [], { format: 'table' }), /^NAME\s+TENANT\s+HOST\s+STATE\s+IPV4\s+IPV6\n$/);
  assert.equal(render('instances', [], { format: 'table', headers: false }), '');
  assert.equal(render('instances', [], { format: 'name' }), '');
});

test('json and yaml are the data as the API returned it; name is kind/name as kubectl prints it', () => {
  assert.deepEqual(JSON.parse(render('instances', [vm], { format: 'json', names })), [vm]);
  assert.deepEqual(parseYaml(render('instances', [vm], { format: 'yaml', names })), [vm]);
  assert.deepEqual(parseYaml(render('instances', vm, { format: 'yaml' })), vm);
  assert.equal(render('instances', [vm, { ...vm, name: 'web2' }], { format: 'name' }), 'instance/web1\ninstance/web2\n');
  // What names one in `weft KIND get`: a port's MAC, a change's version, an agent's host.
  assert.equal(render('ports', [port], { format: 'name' }), 'port/02:00:00:00:00:01\n');
  assert.equal(render('changes', [{ version: 7, kind: 'port.created' }], { format: 'name' }), 'change/7\n');
  assert.equal(render('peers', [{ id: 'pe-1', neighbor: '10.1.1.1' }], { format: 'name' }), 'peer/pe-1\n');
});

test('the ids to name: only those a table or wide shows, by kind', () => {
  assert.deepEqual(
    [...referencedIds('instances', [vm, { ...vm, hostId: 'h-2' }], 'table')].map(([k, v]) => [k, [...v]]),
    [
      ['tenants', ['t-1']],
      ['hosts', ['h-1', 'h-2']],
    ],
  );
  assert.deepEqual([...referencedIds('instances', vm, 'wide').keys()], ['tenants', 'hosts', 'sites']);
  assert.equal(referencedIds('instances', [vm], 'json').size, 0, 'json prints ids: nothing to read');
  assert.equal(referencedIds('racks', [{ id: 'r', name: 'r1', siteId: null }], 'table').size, 0);
});

test('a quota cell: used/limit with * where the tenant has its own, or its own limits in a list', () => {
  const quotas = { instances: 5, ports: null, networks: null, publicIpv4: null, vips: null };
  const limits = { instances: 5, ports: 500, networks: 50, publicIpv4: 1, vips: 3 };
  const usage = { instances: 0, ports: 0, networks: 0, publicIpv4: 0, vips: 0 };
  assert.match(
    render('tenants', { id: 't', name: 'acme', quotas, limits, usage }, { format: 'table' }),
    /acme\s+instances 0\/5\*, ports 0\/500, networks 0\/50/,
  );
  assert.match(render('tenants', [{ id: 't', name: 'acme', quotas }], { format: 'table' }), /acme\s+instances 5$/m);
});

test('a kind without columns shows every field, headers from the field names', () => {
  assert.match(render('other', [{ someField: 1, b: null }], { format: 'table' }), /^SOME-FIELD\s+B\n1\s+-\n$/);
});
