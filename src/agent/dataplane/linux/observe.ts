// Reads weft's objects out of iproute2's JSON (`ip -j -d link`, `bridge -j
// fdb`, `ip -j neigh`) into a KernelState (pure). Anything not named as
// weft's is skipped, so the rest of the host is never reported or touched.
import { bridgeName, PORT_PREFIX, vniOfDevice } from '../../names.js';
import { emptyKernelState, fdbKey, type KernelState, neighKey } from '../dataplane.js';

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
interface JFdb {
  mac: string;
  ifname?: string;
  master?: string;
  dst?: string;
  flags?: string[];
  state?: string;
}
interface JNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state?: string[];
}

export function parseObserved(linksJson: string, fdbJson: string, neighJson: string): KernelState {
  const s = emptyKernelState();
  const links = JSON.parse(linksJson || '[]') as JLink[];
  const bridges = new Map<number, JLink>();
  const vxlans = new Map<number, JLink>();
  const portMaster = new Map<string, { vni: number; mtu: number }>();
  for (const l of links) {
    if (l.ifname.startsWith(PORT_PREFIX)) {
      s.links.add(l.ifname);
      const vni = l.master ? vniOfDevice(l.master) : null;
      if (vni !== null && l.master === bridgeName(vni)) portMaster.set(l.ifname, { vni, mtu: l.mtu });
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
    s.vnis.set(vni, { vni, mtu: br && br.mtu === vx.mtu ? vx.mtu : 0, local: sound ? (d.local ?? '') : '', lazy });
  }
  for (const [vni, br] of bridges) if (!vxlans.has(vni)) s.vnis.set(vni, { vni, mtu: br.mtu, local: '', lazy: false });

  const selfDst = new Map<string, string>();
  const onVxlan = new Set<string>();
  for (const e of JSON.parse(fdbJson || '[]') as JFdb[]) {
    if (!e.ifname || !e.mac) continue;
    const vni = vniOfDevice(e.ifname);
    if (vni !== null && e.ifname.startsWith('wvx')) {
      const key = fdbKey(vni, e.mac);
      if (e.dst && e.flags?.includes('self')) selfDst.set(key, e.dst);
      else if (e.master === bridgeName(vni) && e.state === 'static') onVxlan.add(key);
    } else if (e.ifname.startsWith(PORT_PREFIX) && e.state === 'static' && e.master) {
      const pm = portMaster.get(e.ifname);
      if (pm && e.master === bridgeName(pm.vni)) {
        s.fdb.set(fdbKey(pm.vni, e.mac), `@${e.ifname}`);
        s.plugs.set(e.ifname, { ifname: e.ifname, vni: pm.vni, mtu: pm.mtu, mac: e.mac });
      }
    }
  }
  for (const key of new Set([...selfDst.keys(), ...onVxlan])) {
    if (s.fdb.has(key)) continue;
    const dst = selfDst.get(key);
    s.fdb.set(key, dst !== undefined && onVxlan.has(key) ? dst : '?');
  }
  // A plugged port without its static entry: reported with no MAC, so it is re-plugged.
  for (const [ifname, pm] of portMaster) if (!s.plugs.has(ifname)) s.plugs.set(ifname, { ifname, vni: pm.vni, mtu: pm.mtu, mac: '' });

  for (const n of JSON.parse(neighJson || '[]') as JNeigh[]) {
    const vni = vniOfDevice(n.dev);
    if (vni === null || !n.dev.startsWith('wbr') || !n.lladdr) continue;
    if (!n.state?.includes('PERMANENT')) continue;
    s.neigh.set(neighKey(vni, n.dst), n.lladdr);
  }
  return s;
}
