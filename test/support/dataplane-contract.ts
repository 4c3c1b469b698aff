// The Dataplane contract's machinery: a host to run a case on (a FakeDataplane,
// or a LinuxDataplane in a network namespace made for the case and always
// removed), and dataplaneContract(), which runs a list of cases on each.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import type { Dataplane, KernelState, Op } from '../../src/agent/dataplane/dataplane.js';
import { emptyKernelState } from '../../src/agent/dataplane/dataplane.js';
import { FakeDataplane } from '../../src/agent/dataplane/fake/fake-dataplane.js';
import { applyToState } from '../../src/agent/dataplane/kernel-state.js';
import { LinuxDataplane } from '../../src/agent/dataplane/linux/linux-dataplane.js';
import { run } from '../../src/sys/exec.js';

/** The underlay (VTEP) address of every contract host. */
export const LOCAL = '192.0.2.1';

/** A host with a Dataplane on it, and the hypervisor's part: making and removing port interfaces. */
export interface DataplaneHost {
  readonly dataplane: Dataplane;
  /** Makes a port's host-side interface (a `wp…` name), as the hypervisor does. */
  addLink(ifname: string): Promise<void>;
  /** Removes it (the VM went away). */
  removeLink(ifname: string): Promise<void>;
  /** Ends the dataplane and removes whatever the host made. */
  close(): Promise<void>;
}

/** One case of the contract, run on a fresh host of each implementation. */
export interface DataplaneCase {
  name: string;
  /** A known departure from the contract, by implementation name: the case runs, its failure is reported as TODO. */
  todo?: Record<string, string>;
  run(host: DataplaneHost): Promise<void>;
}

export interface DataplaneImpl {
  name: string;
  open(): Promise<DataplaneHost>;
  /** Why this implementation cannot run here, or false. */
  skip: string | false;
}

export const fakeImpl: DataplaneImpl = {
  name: 'FakeDataplane',
  skip: false,
  async open() {
    const dp = new FakeDataplane();
    return {
      dataplane: dp,
      addLink: async (ifname) => dp.addLink(ifname),
      removeLink: async (ifname) => dp.removeLink(ifname),
      close: async () => {},
    };
  },
};

/** Namespaces made by this process and not yet removed. */
const namespaces = new Set<string>();
let made = 0;

function removeNamespace(ns: string): void {
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  namespaces.delete(ns);
}

// Whatever ends the run (a failed assertion, an exception in a hook), no namespace stays.
process.on('exit', () => {
  for (const ns of [...namespaces]) removeNamespace(ns);
});

const sh = (cmd: string) => run('sh', ['-c', cmd]);

export const linuxImpl: DataplaneImpl = {
  name: 'LinuxDataplane',
  skip: process.getuid?.() === 0 ? false : 'needs root (network namespaces)',
  async open() {
    const ns = `wdc${process.pid}x${made++}`;
    namespaces.add(ns);
    try {
      await sh(`ip netns add ${ns} && ip -n ${ns} link set lo up`);
      // The underlay the vxlan devices send from (a veth: the dummy module may be missing).
      await sh(`ip -n ${ns} link add ul0 type veth peer name ul1 && ip -n ${ns} addr add ${LOCAL}/24 dev ul0 && ip -n ${ns} link set ul0 up`);
    } catch (e) {
      removeNamespace(ns);
      throw e;
    }
    const dp = new LinuxDataplane({ netns: ns, announce: false });
    let peers = 0;
    return {
      dataplane: dp,
      // The peer's name is not weft's, so observe() never reports it.
      addLink: async (ifname) => void (await sh(`ip -n ${ns} link add ${ifname} type veth peer name vm${peers++}`)),
      removeLink: async (ifname) => void (await sh(`ip -n ${ns} link del ${ifname}`)),
      close: async () => {
        dp.close();
        removeNamespace(ns);
      },
    };
  },
};

/** Runs `cases` on each implementation, each case on a host of its own. */
export function dataplaneContract(title: string, cases: DataplaneCase[], impls: DataplaneImpl[] = [fakeImpl, linuxImpl]): void {
  for (const impl of impls) {
    describe(`${title}: ${impl.name}`, { skip: impl.skip }, () => {
      after(() => {
        for (const ns of [...namespaces]) removeNamespace(ns);
      });
      for (const c of cases)
        test(c.name, { todo: c.todo?.[impl.name] ?? false }, async (t) => {
          const host = await impl.open();
          t.after(() => host.close());
          await c.run(host);
        });
    });
  }
}

/**
 * A case's view of its host: the state it expects (the empty state, each
 * successful step applied with applyToState, the interfaces made) and the
 * checks that the implementation reports and observes exactly that.
 */
export class Expect {
  readonly state: KernelState = emptyKernelState();

  constructor(readonly host: DataplaneHost) {}

  async addLink(ifname: string): Promise<void> {
    await this.host.addLink(ifname);
    this.state.links.add(ifname);
  }

  async removeLink(ifname: string): Promise<void> {
    await this.host.removeLink(ifname);
    this.state.links.delete(ifname);
    const p = this.state.plugs.get(ifname);
    if (p) applyToState(this.state, { op: 'port.unplug', plug: p });
  }

  /**
   * Applies `ops` as one plan: exactly the steps in `failing` are reported
   * failed (each with an error), every other step is applied, and observe()
   * then reads back the expected state (as `seen` changes a copy of it, when given).
   */
  async apply(ops: Op[], failing: Op[] = [], seen?: (want: KernelState) => void): Promise<void> {
    const r = await this.host.dataplane.apply({ ops, waiting: [] });
    const at = (op: Op) => ops.indexOf(op);
    assert.deepEqual(
      r.failed.map((f) => at(f.op)).sort((a, b) => a - b),
      failing.map(at).sort((a, b) => a - b),
      `failed steps: ${JSON.stringify(r.failed)}`,
    );
    for (const f of r.failed) assert.ok(f.error.length > 0, 'a failure says why');
    for (const op of ops) if (!failing.includes(op)) applyToState(this.state, op);
    const want = seen ? structuredClone(this.state) : this.state;
    seen?.(want);
    await this.observed(want);
  }

  /** observe() reads back the expected state (or `want`). */
  async observed(want: KernelState = this.state): Promise<void> {
    assert.deepEqual(await this.host.dataplane.observe(), want);
  }
}
