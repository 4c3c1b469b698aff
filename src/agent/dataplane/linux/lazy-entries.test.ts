// Lazy mode's Linux side without a kernel: `ip monitor neigh` lines parsed
// as misses, and the exact commands an install and a shoot-down run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunOptions, RunResult } from '../../../sys/exec.js';
import { parseMiss } from './lazy-entries.js';
import { LinuxDataplane } from './linux-dataplane.js';

test('parseMiss: l3 and l2 misses on weft vxlan devices, nothing else', () => {
  assert.deepEqual(parseMiss('miss 10.0.0.5 dev wvx4100 STALE'), { kind: 'l3', vni: 4100, ip: '10.0.0.5' });
  assert.deepEqual(parseMiss('miss fd00::5 dev wvx4100 '), { kind: 'l3', vni: 4100, ip: 'fd00::5' });
  assert.deepEqual(parseMiss('miss dev wvx7 lladdr 02:57:46:00:00:06 STALE'), { kind: 'l2', vni: 7, mac: '02:57:46:00:00:06' });
  assert.equal(parseMiss('miss 10.0.0.5 dev vxlan0 STALE'), null);
  assert.equal(parseMiss('miss 10.0.0.5 dev wvx0 STALE'), null, 'VNI 0 is not a weft device');
  assert.equal(parseMiss('10.0.0.5 dev wbr4100 lladdr 02:57:46:00:00:05 PERMANENT'), null);
});

test('lazySet and lazyDelete run the commands lazy mode always ran', async () => {
  const calls: { cmd: string; args: string[]; input?: unknown; okCodes?: number[] }[] = [];
  const run = async (cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> => {
    calls.push({ cmd, args, ...(o.input !== undefined && { input: o.input }), ...(o.okCodes && { okCodes: o.okCodes }) });
    return { code: 0, stdout: '', stderr: '' };
  };
  const dp = new LinuxDataplane({ run, netns: 'ns1' });
  await dp.lazySet({ kind: 'l3', vni: 9, ip: '10.0.0.5', mac: '02:57:46:00:00:05', dst: '192.0.2.5' });
  await dp.lazySet({ kind: 'l2', vni: 9, mac: '02:57:46:00:00:06', dst: '192.0.2.6' });
  await dp.lazyDelete([
    { kind: 'l3', vni: 9, ip: '10.0.0.5' },
    { kind: 'l2', vni: 9, mac: '02:57:46:00:00:06' },
    { kind: 'l3', vni: 10, ip: 'fd00::5' },
  ]);
  await dp.lazyDelete([]);
  assert.deepEqual(calls, [
    { cmd: 'bridge', args: ['-n', 'ns1', 'fdb', 'replace', '02:57:46:00:00:05', 'dev', 'wvx9', 'dst', '192.0.2.5', 'self', 'permanent'] },
    { cmd: 'ip', args: ['-n', 'ns1', 'neigh', 'replace', '10.0.0.5', 'lladdr', '02:57:46:00:00:05', 'dev', 'wvx9', 'nud', 'permanent'] },
    { cmd: 'bridge', args: ['-n', 'ns1', 'fdb', 'replace', '02:57:46:00:00:06', 'dev', 'wvx9', 'dst', '192.0.2.6', 'self', 'permanent'] },
    { cmd: 'ip', args: ['-n', 'ns1', '-force', '-batch', '-'], input: 'neigh del 10.0.0.5 dev wvx9\nneigh del fd00::5 dev wvx10\n', okCodes: [1, 2] },
    { cmd: 'bridge', args: ['-n', 'ns1', '-force', '-batch', '-'], input: 'fdb del 02:57:46:00:00:06 dev wvx9 self\n', okCodes: [1, 2] },
  ]);
});
