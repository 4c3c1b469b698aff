import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeFlag, flagFor, inFlagTerms } from './flags.js';

const HOST_CREATE = ['--site', '--rack', '--underlay-ip', '--asn', '--ipv6-prefix', '--state', '--cpus', '--memory-mb', '--disk-gb', '--svp-client-address'];
const INSTANCE_CREATE = ['--site', '--tenant', '--size', '--host', '--net', '--cpus'];
const VIP_CREATE = ['--tenant', '--site', '--address', '--backend', '--check', '--check-port', '--check-path', '--rise', '--fall'];

describe('flagFor', () => {
  it('finds the kebab-cased flag of a field', () => {
    assert.deepEqual(flagFor('underlayIp', HOST_CREATE), { flag: '--underlay-ip' });
    assert.deepEqual(flagFor('ipv6Prefix', HOST_CREATE), { flag: '--ipv6-prefix' });
  });
  it('finds a nested field by its last name, and a spelled-out one', () => {
    assert.deepEqual(flagFor('capacity.cpus', HOST_CREATE), { flag: '--cpus' });
    assert.deepEqual(flagFor('capacity.memoryMb', HOST_CREATE), { flag: '--memory-mb' });
    assert.deepEqual(flagFor('healthCheck.port', VIP_CREATE), { flag: '--check-port' });
    assert.deepEqual(flagFor('importPolicy', ['--import', '--neighbor']), { flag: '--import' });
  });
  it('finds a list item by the singular of the list, with its position and sub-field', () => {
    assert.deepEqual(flagFor('svpClientAddresses[1]', HOST_CREATE), { flag: '--svp-client-address', index: 1 });
    assert.deepEqual(flagFor('subnets[0]', ['--subnet', '--tenant']), { flag: '--subnet', index: 0 });
    assert.deepEqual(flagFor('ipv4Pools[2]', ['--ipv4-pool']), { flag: '--ipv4-pool', index: 2 });
    assert.deepEqual(flagFor('backends[0]', VIP_CREATE), { flag: '--backend', index: 0 });
    assert.deepEqual(flagFor('ports[0].ipv4', INSTANCE_CREATE), { flag: '--net', index: 0, sub: 'ipv4' });
  });
  it('gives nothing for a field the command has no flag for', () => {
    assert.equal(flagFor('name', HOST_CREATE), undefined);
    assert.equal(flagFor('vni', HOST_CREATE), undefined);
    assert.equal(flagFor('ports[0].ipv4', HOST_CREATE), undefined);
    assert.equal(flagFor('not a field', HOST_CREATE), undefined);
  });
});

describe('describeFlag and inFlagTerms', () => {
  it('say which occurrence of a repeated flag', () => {
    assert.equal(describeFlag({ flag: '--net', index: 0, sub: 'ipv4' }, true), '--net (the 1st) ipv4');
    assert.equal(describeFlag({ flag: '--subnet', index: 11 }, true), '--subnet (the 12th)');
    assert.equal(describeFlag({ flag: '--subnet', index: 22 }, true), '--subnet (the 23rd)');
    assert.equal(describeFlag({ flag: '--underlay-ip' }, false), '--underlay-ip');
  });
  it('rewrites only a message that starts with the field', () => {
    assert.equal(
      inFlagTerms('invalid underlayIp "bogus": must be an IPv4 or IPv6 address', 'underlayIp', '--underlay-ip'),
      'invalid --underlay-ip "bogus": must be an IPv4 or IPv6 address',
    );
    assert.equal(inFlagTerms('invalid state: must be one of a, b', 'state', '--state'), 'invalid --state: must be one of a, b');
    assert.equal(inFlagTerms('site "x" not found', 'site', '--site'), 'site "x" not found');
    // A field whose name is a prefix of another's is not rewritten inside it.
    assert.equal(inFlagTerms('invalid ipv4Pools[0] "x": y', 'ipv4', '--ipv4'), 'invalid ipv4Pools[0] "x": y');
  });
});
