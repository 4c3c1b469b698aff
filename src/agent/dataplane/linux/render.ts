// A plan as iproute2 batch lines (pure): `ip -batch -` and `bridge -batch -`
// text in the order the kernel needs, each line tied to the step it belongs
// to so a failed line is reported against its step.

import { bridgeMac, bridgeName, OWNER_ALIAS, vxlanName } from '../../names.js';
import type { Plan } from '../dataplane.js';
import type { GuardPort } from './guards.js';

/** One batch line; `soft` lines are deletions whose "not found" is success. */
export interface Line {
  text: string;
  op: number;
  soft: boolean;
}

export interface Rendered {
  /** Devices: deletions, creations, MTUs, plugs (`ip -batch`). */
  links: Line[];
  /** Bridge port flags and FDB entries (`bridge -batch`). */
  fdb: Line[];
  /** Neighbour entries, unplugs (`ip -batch`). */
  neigh: Line[];
  guardsSet: { op: number; port: GuardPort }[];
  guardsDel: { op: number; ifname: string }[];
  announce: { op: number; ifname: string; vni: number; mac: string; ips: string[] }[];
}

export const VXLAN_PORT = 4789;

export function render(plan: Plan): Rendered {
  const r: Rendered = { links: [], fdb: [], neigh: [], guardsSet: [], guardsDel: [], announce: [] };
  const dels: Line[] = [];
  plan.ops.forEach((o, i) => {
    const line = (to: Line[], text: string, soft = false) => to.push({ text, op: i, soft });
    switch (o.op) {
      case 'vni.add': {
        const { vni, mtu, local, lazy } = o.vni;
        const vx = vxlanName(vni);
        const br = bridgeName(vni);
        const miss = lazy ? ' proxy l2miss l3miss' : '';
        line(r.links, `link add ${vx} mtu ${mtu} type vxlan id ${vni} local ${local} dstport ${VXLAN_PORT} nolearning${miss}`);
        line(r.links, `link set dev ${vx} addrgenmode none alias ${OWNER_ALIAS}`);
        line(r.links, `link add ${br} address ${bridgeMac(vni)} mtu ${mtu} type bridge mcast_snooping 0`);
        // No address of the host's own on a tenant network: no link-local, no RS or MLD into it.
        line(r.links, `link set dev ${br} addrgenmode none alias ${OWNER_ALIAS}`);
        line(r.links, `link set dev ${vx} master ${br} up`);
        line(r.links, `link set dev ${br} up`);
        line(r.fdb, `link set dev ${vx} learning off${lazy ? '' : ' neigh_suppress on'}`);
        break;
      }
      case 'vni.mtu':
        line(r.links, `link set dev ${vxlanName(o.vni)} mtu ${o.mtu}`);
        line(r.links, `link set dev ${bridgeName(o.vni)} mtu ${o.mtu}`);
        break;
      case 'vni.del':
        line(dels, `link del ${bridgeName(o.vni)}`, true);
        line(dels, `link del ${vxlanName(o.vni)}`, true);
        break;
      case 'port.plug':
        line(r.links, `link set dev ${o.plug.ifname} master ${bridgeName(o.plug.vni)} mtu ${o.plug.mtu} up`);
        line(r.fdb, `link set dev ${o.plug.ifname} learning off`);
        break;
      case 'port.unplug':
        line(r.neigh, `link set dev ${o.plug.ifname} nomaster`, true);
        break;
      case 'fdb.set': {
        const vx = vxlanName(o.vni);
        if (o.dst.startsWith('@')) {
          if (o.was !== undefined && !o.was.startsWith('@')) line(r.fdb, `fdb del ${o.mac} dev ${vx} self`, true);
          line(r.fdb, `fdb replace ${o.mac} dev ${o.dst.slice(1)} master static`);
        } else {
          line(r.fdb, `fdb replace ${o.mac} dev ${vx} dst ${o.dst} self permanent`);
          line(r.fdb, `fdb replace ${o.mac} dev ${vx} master static`);
        }
        break;
      }
      case 'fdb.del':
        if (o.was.startsWith('@')) line(r.fdb, `fdb del ${o.mac} dev ${o.was.slice(1)} master`, true);
        else {
          line(r.fdb, `fdb del ${o.mac} dev ${vxlanName(o.vni)} self`, true);
          line(r.fdb, `fdb del ${o.mac} dev ${vxlanName(o.vni)} master`, true);
        }
        break;
      case 'neigh.set':
        line(r.neigh, `neigh replace ${o.ip} lladdr ${o.mac} dev ${bridgeName(o.vni)} nud permanent`);
        break;
      case 'neigh.del':
        line(r.neigh, `neigh del ${o.ip} dev ${bridgeName(o.vni)}`, true);
        break;
      case 'guard.set':
        r.guardsSet.push({ op: i, port: o.port });
        break;
      case 'guard.del':
        r.guardsDel.push({ op: i, ifname: o.ifname });
        break;
      case 'announce':
        r.announce.push({ op: i, ifname: o.ifname, vni: o.vni, mac: o.mac, ips: o.ips });
        break;
    }
  });
  // Deleting a device first frees its name for a re-creation in the same batch.
  r.links = [...dels, ...r.links];
  return r;
}

const NOT_FOUND = /No such file or directory|Cannot find device|does not exist|No such device|Object not found/;

/**
 * Maps a `-force` batch's stderr back to the lines that failed. iproute2
 * prints the error, then `Command failed -:<line>`; deletions of what is
 * already gone are not failures.
 */
export function batchFailures(lines: Line[], stderr: string): { line: Line; error: string }[] {
  const out: { line: Line; error: string }[] = [];
  const text = stderr.split('\n');
  let last: string[] = [];
  for (const t of text) {
    const m = /^Command failed -:(\d+)/.exec(t);
    if (!m) {
      if (t.trim()) last.push(t.trim());
      continue;
    }
    const line = lines[Number(m[1]) - 1];
    const error = last.join('; ') || 'failed';
    last = [];
    if (!line) continue;
    if (line.soft && NOT_FOUND.test(error)) continue;
    out.push({ line, error: `${line.text}: ${error}` });
  }
  return out;
}
