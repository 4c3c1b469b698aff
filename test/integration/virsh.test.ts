// VirshHost on libvirt's test driver (test:///default, no hypervisor needed):
// the VmHost contract (test/support/vm-host-contract.ts), then what only a
// real virsh can show: a command in flight when the process dies or hangs,
// a connection that cannot be made, arguments that virsh's parser would
// misread, define's temporary files. Every virsh process is ended and every
// temporary directory removed, whatever a case does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { VirshHost, type VirshOptions } from '../../src/agent/vm/virsh.js';
import { WeftError } from '../../src/model/errors.js';
import { until } from '../../src/sys/until.js';
import { testDomainXml, type VmHostImpl, vmHostContract } from '../support/vm-host-contract.js';

const haveVirsh = !spawnSync('virsh', ['--version']).error;
const skip = haveVirsh ? false : 'virsh is not on PATH (libvirt-clients)';

/** Hosts and directories made here and not yet removed; all go at the end, also on failure. */
const hosts = new Set<VirshHost>();
const dirs = new Set<string>();

async function cleanup(): Promise<void> {
  for (const h of [...hosts]) {
    hosts.delete(h);
    await h.close();
  }
  for (const d of [...dirs]) {
    dirs.delete(d);
    rmSync(d, { recursive: true, force: true });
  }
}
after(cleanup);
// Should the runner stop early, no virsh outlives it.
process.on('exit', () => {
  for (const h of hosts) if (h.pid) process.kill(h.pid, 'SIGKILL');
});

function newHost(o: Partial<VirshOptions> = {}): { host: VirshHost; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-virsh-'));
  dirs.add(dir);
  const host = new VirshHost({ uri: 'test:///default', dir, ...o });
  hosts.add(host);
  return { host, dir };
}

async function killVirsh(host: VirshHost): Promise<void> {
  const pid = host.pid;
  assert.ok(pid, 'a virsh runs');
  process.kill(pid, 'SIGKILL');
  await until('virsh to be gone', () => host.pid === undefined, 5000);
}

const virshImpl: VmHostImpl = {
  name: 'VirshHost (test:///default)',
  skip,
  async open() {
    const { host, dir } = newHost();
    return {
      host,
      definedXml: (name) => host.run(['dumpxml', '--inactive', name]),
      async kill() {
        await host.list();
        await killVirsh(host);
      },
      async close() {
        hosts.delete(host);
        await host.close();
        assert.equal(host.pid, undefined);
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
      },
    };
  },
};

vmHostContract('VmHost contract', [virshImpl]);

const isDataplane =
  (...says: RegExp[]) =>
  (e: unknown) => {
    assert.ok(e instanceof WeftError);
    assert.equal(e.code, 'E_DATAPLANE', e.message);
    for (const s of says) assert.match(e.message, s);
    return true;
  };

describe('VirshHost', { skip }, () => {
  test('one virsh process for many commands; close ends it, the next call starts another', async () => {
    const { host } = newHost();
    await host.define('weft-a', testDomainXml('weft-a'));
    await host.start('weft-a');
    await host.list();
    assert.equal(host.spawned, 1);
    const pid = host.pid;
    await host.close();
    assert.equal(host.pid, undefined);
    assert.throws(() => process.kill(pid as number, 0), 'the process is gone');
    assert.deepEqual([...(await host.list())], []);
    assert.equal(host.spawned, 2);
  });

  test('a command in flight when virsh dies fails naming the death; the next call gets a new virsh', async () => {
    const { host } = newHost();
    // `event --timeout` waits for domain events: a command that takes its time.
    const waiting = host.run(['event', '--all', '--timeout', '20']);
    await until('virsh to run', () => host.pid !== undefined);
    await new Promise((r) => setTimeout(r, 200));
    await killVirsh(host);
    await assert.rejects(waiting, isDataplane(/virsh event/, /killed by SIGKILL/));
    assert.deepEqual([...(await host.list())], []);
    assert.equal(host.spawned, 2);
  });

  test('a command that does not answer in time fails, and its virsh is replaced', async () => {
    const { host } = newHost({ timeoutMs: 300 });
    await host.list();
    const first = host.pid;
    await assert.rejects(host.run(['event', '--all', '--timeout', '20']), isDataplane(/no answer in 300 ms/));
    await host.define('weft-a', testDomainXml('weft-a'));
    assert.notEqual(host.pid, first);
    assert.deepEqual([...(await host.list())], [['weft-a', 'stopped']]);
  });

  test('a connection that cannot be made fails each call with virsh’s reason', async () => {
    const { host } = newHost({ uri: 'test:///nonexistent/weft.xml' });
    await assert.rejects(host.list(), isDataplane(/virsh list/, /exited with code 1/, /weft\.xml/));
    await assert.rejects(host.start('weft-a'), isDataplane(/exited with code 1/));
    assert.equal(host.pid, undefined);
  });

  test('a virsh that cannot be started fails the call', async () => {
    const { host } = newHost({ virsh: '/nonexistent/virsh' });
    await assert.rejects(host.list(), isDataplane(/ENOENT/));
  });

  test('arguments reach virsh as given: quotes, spaces, its own separators and comment sign', async () => {
    const { host } = newHost();
    for (const s of ["it's", 'a b  c', 'x;echo y', '#not a comment', '"dq"', 'back\\slash', '$HOME', '__weft_x_1__', 'virsh # '])
      assert.equal(await host.run(['echo', s]), s);
    // A failing command's errors are all its own; the next command's output is clean.
    await assert.rejects(host.run(['dominfo', 'nosuch']), isDataplane(/virsh dominfo: error: failed to get domain 'nosuch'/));
    assert.equal(await host.run(['list', '--all', '--name']), 'test\n');
  });

  test('define: its XML file is removed after each call, a failed one too; XML libvirt refuses is E_DATAPLANE', async () => {
    const { host, dir } = newHost();
    await host.define('weft-a', testDomainXml('weft-a'));
    await assert.rejects(host.define('weft-b', "<domain type='test'><name>weft-b</name><memory>oops</memory></domain>"), isDataplane(/weft-b/));
    await assert.rejects(host.define('weft-c', "<domain type='test'><name>weft-c</name>"), isDataplane(/weft-c/));
    assert.deepEqual(readdirSync(dir), []);
    assert.deepEqual([...(await host.list())], [['weft-a', 'stopped']]);
  });

  test('stop: a guest that does not shut down is destroyed after stopTimeoutMs', async () => {
    // The test driver's guests stop at once; this virsh's are deaf: its shutdown is turned into an echo.
    const { host, dir } = newHost({ stopTimeoutMs: 300, pollMs: 20 });
    const deaf = join(dir, 'deaf-virsh');
    writeFileSync(deaf, `#!/bin/sh\nsed -u "s/^'shutdown' /'echo' /" | exec virsh "$@"\n`, { mode: 0o755 });
    const deafHost = new VirshHost({ uri: 'test:///default', dir, virsh: deaf, stopTimeoutMs: 300, pollMs: 20 });
    hosts.add(deafHost);
    for (const h of [host, deafHost]) {
      await h.define('weft-a', testDomainXml('weft-a'));
      await h.start('weft-a');
      const t0 = Date.now();
      await h.stop('weft-a');
      const took = Date.now() - t0;
      assert.equal((await h.list()).get('weft-a'), 'stopped');
      if (h === deafHost) assert.ok(took >= 300, `waited ${took} ms before the plug`);
      else assert.ok(took < 300, `a guest that shuts down is not waited for (${took} ms)`);
    }
  });
});
