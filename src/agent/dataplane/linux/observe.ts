// Reads weft's objects out of iproute2's JSON (`ip -j -d link`, `bridge -j
// fdb`, `ip -j neigh`) into a KernelState or any KernelEntries (pure).
// Anything not named as weft's is skipped, so the rest of the host is never
// reported or touched. FDB and neighbour dumps are taken an entry at a time.

import { Interner } from '../../../model/interner.js';
import { packMac, unpackMac } from '../../../model/packed-addr.js';
import { PackedTable } from '../../../model/packed-table.js';
import { bridgeName, PORT_PREFIX, vniOfDevice } from '../../names.js';
import { emptyKernelState, fdbKey, type KernelEntries, type KernelState, kernelEntries, splitKey } from '../dataplane.js';

interface JLink {
  ifname: string;
  mtu: number;
  master?: string;
  address?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; local?: string; proxy?: boolean; l2miss?: boolean; l3miss?: boolean; learning?: boolean };
    info_slave_data?: { neigh_suppress?: boolean; learning?: boolean };
  };
}
export interface JFdb {
  mac: string;
  ifname?: string;
  master?: string;
  dst?: string;
  flags?: string[];
  state?: string;
}
export interface JNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state?: string[];
}

export function parseObserved(linksJson: string, fdbJson: string, neighJson: string): KernelState {
  const s = emptyKernelState();
  const p = new ObservedParser(kernelEntries(s), linksJson);
  for (const e of JSON.parse(fdbJson || '[]') as JFdb[]) p.fdb(e);
  p.fdbDone();
  for (const n of JSON.parse(neighJson || '[]') as JNeigh[]) p.neigh(n);
  return s;
}

/**
 * The parse in steps, into `into` (empty): the links first (whole), then
 * every FDB entry (`fdb`, then `fdbDone`), then every neighbour (`neigh`).
 */
export class ObservedParser {
  private readonly portMaster = new Map<string, { vni: number; mtu: number }>();
  /**
   * A remote MAC's entries on a vxlan device, by [vni, mac hi, mac lo]: its
   * `self` entry's destination (number + 1, 0: none) and whether it has the
   * bridge's `master static` entry (1). MACs that do not pack, by fdbKey.
   */
  private readonly remote = new PackedTable(3, 2, 1024);
  private readonly oddRemote = new Map<string, { dst?: string; master: boolean }>();
  private readonly dsts = new Interner();

  constructor(
    private readonly into: KernelEntries,
    linksJson: string,
  ) {
    const links = JSON.parse(linksJson || '[]') as JLink[];
    const bridges = new Map<number, JLink>();
    const vxlans = new Map<number, JLink>();
    for (const l of links) {
      if (l.ifname.startsWith(PORT_PREFIX)) {
        into.links.add(l.ifname);
        const vni = l.master ? vniOfDevice(l.master) : null;
        if (vni !== null && l.master === bridgeName(vni)) this.portMaster.set(l.ifname, { vni, mtu: l.mtu });
        continue;
      }
      const vni = vniOfDevice(l.ifname);
      if (vni === null) continue;
      if (l.linkinfo?.info_kind === 'bridge') bridges.set(vni, l);
      else if (l.linkinfo?.info_kind === 'vxlan') vxlans.set(vni, l);
    }
    for (const [vni, vx] of vxlans) {
      const d = vx.linkinfo?.info_data ?? {};
      const slave = vx.linkinfo?.info_slave_data ?? {};
      const lazy = d.proxy === true && d.l2miss === true && d.l3miss === true;
      const br = bridges.get(vni);
      // A half-made or altered pair is reported with no local address, so reconcile re-creates it.
      const sound =
        br !== undefined &&
        vx.master === bridgeName(vni) &&
        d.id === vni &&
        d.learning === false &&
        slave.learning === false &&
        (lazy || slave.neigh_suppress === true);
      into.vnis.set(vni, { vni, mtu: br && br.mtu === vx.mtu ? vx.mtu : 0, local: sound ? (d.local ?? '') : '', lazy });
    }
    for (const [vni, br] of bridges) if (!vxlans.has(vni)) into.vnis.set(vni, { vni, mtu: br.mtu, local: '', lazy: false });
  }

  fdb(e: JFdb): void {
    if (!e.ifname || !e.mac) return;
    const vni = vniOfDevice(e.ifname);
    if (vni !== null && e.ifname.startsWith('wvx')) {
      const self = e.dst !== undefined && e.dst !== '' && e.flags?.includes('self') === true;
      const master = !self && e.master === bridgeName(vni) && e.state === 'static';
      if (!self && !master) return;
      const m = packMac(e.mac);
      if (m < 0) {
        const key = fdbKey(vni, e.mac);
        const r = this.oddRemote.get(key) ?? { master: false };
        if (self) r.dst = e.dst;
        else r.master = true;
        this.oddRemote.set(key, r);
        return;
      }
      const t = this.remote;
      const hi = Math.floor(m / 0x1000000);
      t.key[0] = vni;
      t.key[1] = hi;
      t.key[2] = m - hi * 0x1000000;
      const at = t.find();
      const dst = at >= 0 ? t.value(at, 0) : 0;
      const has = at >= 0 ? t.value(at, 1) : 0;
      t.set(self ? this.dsts.id(e.dst as string) + 1 : dst, master ? 1 : has);
    } else if (e.ifname.startsWith(PORT_PREFIX) && e.state === 'static' && e.master) {
      const pm = this.portMaster.get(e.ifname);
      if (pm && e.master === bridgeName(pm.vni)) {
        this.into.fdbSet(pm.vni, e.mac, `@${e.ifname}`);
        this.into.plugs.set(e.ifname, { ifname: e.ifname, vni: pm.vni, mtu: pm.mtu, mac: e.mac });
      }
    }
  }

  /** After the last FDB entry: the remote entries, whole or partial (`?`: rewritten by reconcile). */
  fdbDone(): void {
    const t = this.remote;
    for (let e = 0; e < t.end; e++) {
      const vni = t.word(e, 0);
      const mac = unpackMac(t.word(e, 1) * 0x1000000 + t.word(e, 2));
      // A local port's static entry wins over leftovers on the vxlan device.
      if (this.into.fdbGet(vni, mac) !== undefined) continue;
      const dst = t.value(e, 0);
      this.into.fdbSet(vni, mac, dst > 0 && t.value(e, 1) === 1 ? this.dsts.text(dst - 1) : '?');
    }
    for (const [key, r] of this.oddRemote) {
      const [vni, mac] = splitKey(key);
      if (this.into.fdbGet(vni, mac) !== undefined) continue;
      this.into.fdbSet(vni, mac, r.dst !== undefined && r.master ? r.dst : '?');
    }
    this.remote.clear();
    this.oddRemote.clear();
    // A plugged port without its static entry: reported with no MAC, so it is re-plugged.
    for (const [ifname, pm] of this.portMaster) if (!this.into.plugs.has(ifname)) this.into.plugs.set(ifname, { ifname, vni: pm.vni, mtu: pm.mtu, mac: '' });
  }

  neigh(n: JNeigh): void {
    const vni = vniOfDevice(n.dev);
    if (vni === null || !n.dev.startsWith('wbr') || !n.lladdr) return;
    if (!n.state?.includes('PERMANENT')) return;
    this.into.neighSet(vni, n.dst, n.lladdr);
  }
}
