// The Dataplane contract's one harness: a host to run a case on (a
// FakeDataplane, or a LinuxDataplane in a network namespace made for the case
// and always removed, the case failing or not), with the hypervisor's part
// (making port interfaces) and probes that read back what the seam does not
// report (lazy entries, routed ports) or make the kernel act (a miss); and
// dataplaneContract(), which runs a list of cases on each implementation.
// The cases are in test/contract/dataplane.contract.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import type { Dataplane, KernelState, Op } from '../../src/agent/dataplane/dataplane.js';
import { emptyKernelState } from '../../src/agent/dataplane/dataplane.js';
import { FakeDataplane } from '../../src/agent/dataplane/fake/fake-dataplane.js';
import { applyToState } from '../../src/agent/dataplane/kernel-state.js';
import { GATEWAY4, GATEWAY6, ROUTING_TABLE } from '../../src/agent/dataplane/linux/guards-routed.js';
import { LinuxDataplane } from '../../src/agent/dataplane/linux/linux-dataplane.js';
import { bridgeName, vxlanName } from '../../src/agent/names.js';
import { run } from '../../src/sys/exec.js';

/** The underlay (VTEP) address of every contract host. */
export const LOCAL = '192.0.2.1';

/** What a routed port's interface holds, as a host reads it back. */
export interface RoutedView {
  mtu: number;
  /** It has both gateway addresses (GATEWAY4/32, GATEWAY6/64). */
  gateways: boolean;
  /** Strict reverse-path filtering is on. */
  rpFilter: boolean;
}

/** The lazy entries on `wvx<vni>`: MAC -> VTEP, IP -> MAC. */
export interface LazyView {
  fdb: Map<string, string>;
  neigh: Map<string, string>;
}

/** The routed ports configured (by interface), and the routing table: the ports it guards, the VIPs it DNATs (null: no table). */
export interface RoutedRead {
  ports: Map<string, RoutedView>;
  table: { ports: string[]; vips: string[] } | null;
}

/**
 * A host with a Dataplane on it, the hypervisor's part (making and removing
 * port interfaces), and probes of what the seam does not report: read back
 * from the fake's public state, or from the namespace's kernel.
 */
export interface DataplaneHost {
  readonly dataplane: Dataplane;
  /** Makes a port's host-side interface (a `wp…` name), as the hypervisor does. */
  addLink(ifname: string): Promise<void>;
  /** Removes it (the VM went away). */
  removeLink(ifname: string): Promise<void>;
  /** Makes the kernel raise an l3 miss for `ip` on `wvx<vni>` (the device must exist). */
  raiseMiss(vni: number, ip: string): Promise<void>;
  /** The lazy entries on `wvx<vni>` (empty when the device is gone). */
  lazyEntries(vni: number): Promise<LazyView>;
  /** Which of `ifnames` are configured as routed ports, and the routing table. */
  routed(ifnames: string[]): Promise<RoutedRead>;
  /** How long a kernel event may take to reach a watch (and a watch to start hearing them). */
  readonly settleMs: number;
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
      raiseMiss: async (vni, ip) => dp.raiseMiss({ kind: 'l3', vni, ip }),
      async lazyEntries(vni) {
        const pick = (m: Map<string, string>) => new Map([...m].filter(([k]) => k.startsWith(`${vni}|`)).map(([k, v]) => [k.slice(k.indexOf('|') + 1), v]));
        return { fdb: pick(dp.lazy.fdb), neigh: pick(dp.lazy.neigh) };
      },
      async routed(ifnames) {
        // The fake keeps a configured port's MTU; the gateways and rp_filter come with it.
        const ports = new Map<string, RoutedView>();
        for (const n of ifnames) {
          const mtu = dp.routed.ports.get(n);
          if (mtu !== undefined) ports.set(n, { mtu, gateways: true, rpFilter: true });
        }
        const t = dp.routed.table;
        return { ports, table: t ? { ports: [...t.ports], vips: t.vips.map((v) => v.vip).sort() } : null };
      },
      settleMs: 0,
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

function removeNamespaces(): void {
  for (const ns of [...namespaces]) removeNamespace(ns);
}

// Whatever ends the run (a failed assertion, an exception in a hook, the test
// runner or a user stopping it with a signal), no namespace stays.
process.on('exit', removeNamespaces);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.once(sig, () => {
    removeNamespaces();
    // Nobody else handles it: the signal's own action, ending the process.
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
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
      await sh(`ip -n ${ns} link add ul0 type veth peer name ul1 && ip -n ${ns} addr add ${LOCAL}/24 dev ul0`);
      await sh(`ip -n ${ns} link set ul0 up && ip -n ${ns} link set ul1 up`);
      return linuxHost(ns, new LinuxDataplane({ netns: ns, announce: false }));
    } catch (e) {
      removeNamespace(ns);
      throw e;
    }
  },
};

/** A LinuxDataplane in namespace `ns`; the probes read the namespace's kernel. */
function linuxHost(ns: string, dp: LinuxDataplane): DataplaneHost {
  /** `<tool> -n ns -j <args>` parsed; nothing when the object is missing. */
  const json = async (tool: 'ip' | 'bridge', args: string[]) => {
    const r = await run(tool, ['-n', ns, '-j', ...args], { okCodes: [1, 255] });
    return r.code === 0 ? (JSON.parse(r.stdout || '[]') as Record<string, unknown>[]) : [];
  };
  let peers = 0;
  return {
    dataplane: dp,
    // A veth pair, as a VM's or container's would be; the peer's name is not weft's, so observe() never reports it.
    addLink: async (ifname) => void (await sh(`ip -n ${ns} link add ${ifname} type veth peer name vm${peers++}`)),
    removeLink: async (ifname) => void (await sh(`ip -n ${ns} link del ${ifname}`)),
    async raiseMiss(vni, ip) {
      // An ARP request the bridge floods to the vxlan port: with `proxy l3miss` and no entry, the kernel reports a miss.
      await sh(`ip -n ${ns} addr replace 10.77.0.1/24 dev ${bridgeName(vni)}`);
      await run('ping', ['-c', '1', '-W', '1', ip], { netns: ns, okCodes: [1, 2] });
    },
    async lazyEntries(vni) {
      const fdb = new Map<string, string>();
      for (const e of await json('bridge', ['fdb', 'show', 'dev', vxlanName(vni)]))
        if (typeof e.dst === 'string' && (e.flags as string[] | undefined)?.includes('self') && e.state === 'permanent') fdb.set(e.mac as string, e.dst);
      const neigh = new Map<string, string>();
      for (const n of await json('ip', ['neigh', 'show', 'dev', vxlanName(vni)]))
        if (typeof n.lladdr === 'string' && (n.state as string[] | undefined)?.includes('PERMANENT')) neigh.set(n.dst as string, n.lladdr);
      return { fdb, neigh };
    },
    async routed(ifnames) {
      const ports = new Map<string, RoutedView>();
      for (const l of await json('ip', ['addr', 'show'])) {
        const name = l.ifname as string;
        if (!ifnames.includes(name)) continue;
        const addrs = ((l.addr_info as { local: string; prefixlen: number }[]) ?? []).map((a) => `${a.local}/${a.prefixlen}`);
        const gateways = addrs.includes(`${GATEWAY4}/32`) && addrs.includes(`${GATEWAY6}/64`);
        const rp = await run('sysctl', ['-n', `net.ipv4.conf.${name}.rp_filter`], { netns: ns });
        if (gateways) ports.set(name, { mtu: l.mtu as number, gateways, rpFilter: rp.stdout.trim() === '1' });
      }
      const r = await run('nft', ['list', 'table', 'inet', ROUTING_TABLE], { netns: ns, okCodes: [1] });
      if (r.code !== 0) return { ports, table: null };
      const set = /set routed_ports \{[^}]*?elements = \{([^}]*)\}/.exec(r.stdout);
      const guarded = [...(set?.[1] ?? '').matchAll(/"([^"]+)"/g)].map((m) => m[1] as string).sort();
      const vips = [...r.stdout.matchAll(/daddr (\S+) dnat/g)].map((m) => m[1] as string).sort();
      return { ports, table: { ports: guarded, vips } };
    },
    settleMs: 300,
    async close() {
      try {
        dp.close();
      } finally {
        removeNamespace(ns);
      }
    },
  };
}

/** Runs `cases` on each implementation, each case on a host of its own. */
export function dataplaneContract(title: string, cases: DataplaneCase[], impls: DataplaneImpl[] = [fakeImpl, linuxImpl]): void {
  for (const impl of impls) {
    describe(`${title}: ${impl.name}`, { skip: impl.skip }, () => {
      after(removeNamespaces);
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
