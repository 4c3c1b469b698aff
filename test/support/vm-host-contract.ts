// The VmHost contract: one list of cases, run on FakeVmHost by
// src/agent/vm/fake.test.ts and on VirshHost (libvirt's test driver) by
// test/integration/virsh.test.ts, so the fake the agent's unit tests trust
// does what libvirt does. Each case gets a host of its own: for virsh a new
// test:///default connection, which starts with the driver's own running
// domain `test` and nothing else; the fake is made with such a domain too.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { FakeVmHost } from '../../src/agent/vm/fake.js';
import type { VmHost } from '../../src/agent/vm/vm-host.js';
import { WeftError } from '../../src/model/errors.js';

/** A host with a VmHost on it, and probes of what the seam does not report. */
export interface VmHostHarness {
  readonly host: VmHost;
  /** The definition the hypervisor keeps for `name` (what its next start boots). */
  definedXml(name: string): Promise<string>;
  /** Kills what the host runs on (the virsh process); the fake has nothing to kill. */
  kill(): Promise<void>;
  /** Closes the host and removes whatever the harness made; safe to call twice. */
  close(): Promise<void>;
}

export interface VmHostImpl {
  name: string;
  /** Why this implementation cannot run here, or false. */
  skip: string | false;
  open(): Promise<VmHostHarness>;
}

export interface VmHostCase {
  name: string;
  run(h: VmHostHarness): Promise<void>;
}

/** A uuid fixed by the name (a domain keeps its uuid across definitions). */
export function uuidOf(name: string): string {
  const h = createHash('sha256').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A small domain for libvirt's test driver. `uuid: null` leaves the uuid out. */
export function testDomainXml(name: string, o: { memoryKiB?: number; uuid?: string | null; xmlName?: string } = {}): string {
  const uuid = o.uuid === undefined ? uuidOf(name) : o.uuid;
  return [
    `<domain type='test'>`,
    `  <name>${o.xmlName ?? name}</name>`,
    ...(uuid === null ? [] : [`  <uuid>${uuid}</uuid>`]),
    `  <memory unit='KiB'>${o.memoryKiB ?? 65536}</memory>`,
    `  <vcpu>1</vcpu>`,
    `  <os><type arch='x86_64'>hvm</type></os>`,
    `</domain>`,
    '',
  ].join('\n');
}

const memoryOf = (xml: string) => Number(/<memory unit='KiB'>(\d+)<\/memory>/.exec(xml)?.[1]);

const entries = async (h: VmHostHarness) => [...(await h.host.list())].sort();

/** Rejects with a WeftError of `code` whose message matches every pattern. */
async function fails(p: Promise<unknown>, code: string, ...says: RegExp[]): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof WeftError, `a WeftError, not ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const s of says) assert.match(e.message, s);
    return true;
  });
}

export const vmHostCases: VmHostCase[] = [
  {
    name: 'list: only weft- domains; a defined domain is stopped',
    async run(h) {
      assert.deepEqual(await entries(h), [], 'the driver’s own `test` domain is not weft’s');
      await h.host.define('weft-a', testDomainXml('weft-a'));
      assert.deepEqual(await entries(h), [['weft-a', 'stopped']]);
    },
  },
  {
    name: 'start and stop; each again changes nothing',
    async run(h) {
      await h.host.define('weft-a', testDomainXml('weft-a'));
      await h.host.define('weft-b', testDomainXml('weft-b'));
      await h.host.start('weft-a');
      assert.deepEqual(await entries(h), [
        ['weft-a', 'running'],
        ['weft-b', 'stopped'],
      ]);
      await h.host.start('weft-a');
      assert.deepEqual(await entries(h), [
        ['weft-a', 'running'],
        ['weft-b', 'stopped'],
      ]);
      await h.host.stop('weft-a');
      await h.host.stop('weft-a');
      await h.host.stop('weft-b');
      assert.deepEqual(await entries(h), [
        ['weft-a', 'stopped'],
        ['weft-b', 'stopped'],
      ]);
    },
  },
  {
    name: 'define again: the new definition is kept; a running domain goes on running',
    async run(h) {
      await h.host.define('weft-a', testDomainXml('weft-a'));
      assert.equal(memoryOf(await h.definedXml('weft-a')), 65536);
      await h.host.define('weft-a', testDomainXml('weft-a', { memoryKiB: 131072 }));
      assert.equal(memoryOf(await h.definedXml('weft-a')), 131072);
      await h.host.start('weft-a');
      await h.host.define('weft-a', testDomainXml('weft-a', { memoryKiB: 262144 }));
      assert.deepEqual(await entries(h), [['weft-a', 'running']]);
      assert.equal(memoryOf(await h.definedXml('weft-a')), 262144);
    },
  },
  {
    name: 'undefine: a running domain is stopped and removed; an unknown one is fine',
    async run(h) {
      await h.host.define('weft-a', testDomainXml('weft-a'));
      await h.host.define('weft-b', testDomainXml('weft-b'));
      await h.host.start('weft-a');
      await h.host.undefine('weft-a');
      assert.deepEqual(await entries(h), [['weft-b', 'stopped']]);
      await h.host.undefine('weft-b');
      await h.host.undefine('weft-b');
      await h.host.undefine('weft-never');
      assert.deepEqual(await entries(h), []);
      // Its name is free again, for any uuid.
      await h.host.define('weft-a', testDomainXml('weft-a', { uuid: uuidOf('weft-other') }));
      assert.deepEqual(await entries(h), [['weft-a', 'stopped']]);
    },
  },
  {
    name: 'errors: start or stop of an unknown domain is E_DATAPLANE naming it',
    async run(h) {
      await fails(h.host.start('weft-missing'), 'E_DATAPLANE', /weft-missing/, /failed to get domain/);
      await fails(h.host.stop('weft-missing'), 'E_DATAPLANE', /weft-missing/, /failed to get domain/);
      assert.deepEqual(await entries(h), []);
    },
  },
  {
    name: 'errors: XML naming another domain, or none, and names not weft’s are refused before the hypervisor',
    async run(h) {
      await fails(h.host.define('weft-a', testDomainXml('weft-a', { xmlName: 'weft-b' })), 'E_INVALID_ARG', /weft-a/, /weft-b/);
      await fails(h.host.define('weft-a', '<domain type="test"><uuid>x</uuid></domain>'), 'E_INVALID_ARG', /weft-a/);
      await fails(h.host.define('weft-a', 'not xml'), 'E_INVALID_ARG', /weft-a/);
      // A <name> that is not the domain's own does not count.
      await fails(h.host.define('weft-a', "<domain type='test'><cpu><model><name>weft-a</name></model></cpu></domain>"), 'E_INVALID_ARG');
      assert.deepEqual(await entries(h), []);
      // The driver's own domain exists and runs, but is not weft's to touch.
      await fails(h.host.stop('test'), 'E_INVALID_ARG', /test/);
      await fails(h.host.undefine('test'), 'E_INVALID_ARG');
      await fails(h.host.define('test', testDomainXml('test')), 'E_INVALID_ARG');
      await fails(h.host.start("weft-a'; destroy test"), 'E_INVALID_ARG');
    },
  },
  {
    name: 'errors: a redefinition must keep the uuid; a uuid belongs to one name',
    async run(h) {
      await h.host.define('weft-a', testDomainXml('weft-a'));
      await fails(h.host.define('weft-a', testDomainXml('weft-a', { uuid: uuidOf('weft-x') })), 'E_DATAPLANE', /weft-a/, /already exists with uuid/);
      await fails(h.host.define('weft-a', testDomainXml('weft-a', { uuid: null })), 'E_DATAPLANE', /weft-a/);
      await fails(h.host.define('weft-b', testDomainXml('weft-b', { uuid: uuidOf('weft-a') })), 'E_DATAPLANE', /weft-b/, /already defined with uuid/);
      assert.deepEqual(await entries(h), [['weft-a', 'stopped']]);
      // The first definition without a uuid gets one.
      await h.host.define('weft-c', testDomainXml('weft-c', { uuid: null }));
      assert.match(await h.definedXml('weft-c'), /<uuid>[0-9a-f-]{36}<\/uuid>/);
    },
  },
  {
    name: 'calls made at once run one after another',
    async run(h) {
      const names = ['weft-1', 'weft-2', 'weft-3', 'weft-4'];
      await Promise.all(names.map((n) => h.host.define(n, testDomainXml(n))));
      await Promise.all([...names.map((n) => h.host.start(n)), h.host.stop('weft-1'), h.host.list()]);
      assert.deepEqual(await entries(h), [
        ['weft-1', 'stopped'],
        ['weft-2', 'running'],
        ['weft-3', 'running'],
        ['weft-4', 'running'],
      ]);
    },
  },
  {
    name: 'migrate: a destination that cannot take it fails naming the domain, which still runs here; bad input is refused first',
    async run(h) {
      await h.host.define('weft-a', testDomainXml('weft-a'));
      await fails(h.host.migrate('weft-a', 'qemu+tls://192.0.2.10/system'), 'E_DATAPLANE', /domain weft-a/, /not running/);
      await h.host.start('weft-a');
      // Nothing listens there (the test driver cannot migrate at all): libvirt leaves the domain where it was.
      await fails(h.host.migrate('weft-a', 'qemu+tcp://127.0.0.1:1/system'), 'E_DATAPLANE', /domain weft-a/);
      assert.deepEqual(await entries(h), [['weft-a', 'running']]);
      await fails(h.host.migrate('weft-a', "qemu+tls://x/system'; shutdown"), 'E_INVALID_ARG', /migration URI/);
      await fails(h.host.migrate('weft-a', 'test:///default'), 'E_INVALID_ARG', /qemu URI/);
      await fails(h.host.migrate('weft-b', 'qemu+tls://192.0.2.10/system'), 'E_DATAPLANE', /domain weft-b/, /not defined/);
    },
  },
  {
    name: 'after what it runs on is killed, the next call works',
    async run(h) {
      await h.host.define('weft-a', testDomainXml('weft-a'));
      await h.kill();
      // The test driver's domains go with its connection; qemu:///system's would not. Either way the host answers.
      const after = await h.host.list();
      assert.ok(after.size <= 1);
      await h.host.define('weft-b', testDomainXml('weft-b'));
      await h.host.start('weft-b');
      assert.equal((await h.host.list()).get('weft-b'), 'running');
    },
  },
];

export const fakeVmImpl: VmHostImpl = {
  name: 'FakeVmHost',
  skip: false,
  async open() {
    const host = new FakeVmHost({ others: ['test'] });
    return {
      host,
      async definedXml(name) {
        const d = host.domains.get(name);
        if (!d) throw new WeftError('E_NOT_FOUND', `no domain ${name}`);
        // As libvirt writes a definition back: with its uuid.
        return d.xml.includes('<uuid>') ? d.xml : d.xml.replace('</name>', `</name>\n  <uuid>${d.uuid}</uuid>`);
      },
      kill: async () => {},
      close: () => host.close(),
    };
  },
};

/** Runs the cases on each implementation, each case on a host of its own, closed however the case ends. */
export function vmHostContract(title: string, impls: VmHostImpl[], cases: VmHostCase[] = vmHostCases): void {
  for (const impl of impls) {
    describe(`${title}: ${impl.name}`, { skip: impl.skip }, () => {
      const open = new Set<VmHostHarness>();
      after(async () => {
        for (const h of open) await h.close();
      });
      for (const c of cases)
        test(c.name, async (t) => {
          const h = await impl.open();
          open.add(h);
          t.after(async () => {
            open.delete(h);
            await h.close();
          });
          await c.run(h);
        });
    });
  }
}
