// The in-memory mapping index: (VNI, MAC) -> host, (VNI, IP) -> MAC and
// host, underlay IP -> host, and the VNIs present on each host. Fed only by
// the change log, so it is never stale by more than the time to apply a
// committed change; lookups never touch the store.
//
// Lookups allocate nothing: VL2 and IPv4 VL3 are two Map probes on numbers
// read straight from the request (VNI, then the 48-bit MAC or the IPv4
// address); IPv6 VL3 uses the 16 address bytes as a one-byte-per-char key.
import { parseIp, parseMac } from '../model/addr.js';
import type { LoggedChange, PortMapping } from '../model/changes.js';
import { ip16 } from './codec.js';
import { L3_TYPE } from './wire.js';
export interface HostRef {
  hostId: string;
  underlayIp: string;
  /** The underlay as SVP sends it (16 bytes, IPv4-mapped). */
  underlay16: Buffer;
}

export interface L3Entry {
  /** 48-bit MAC as a number (exact in a double). */
  mac: number;
  host: HostRef;
}

const v6Key = (n: bigint): string => ip16(6, n).toString('latin1');
const underlayKey = (ip: string): string => {
  const p = parseIp('underlayIp', ip);
  return ip16(p.family, p.n).toString('latin1');
};

/** Gets or makes the inner map of a VNI. */
function inner<K, V>(m: Map<number, Map<K, V>>, vni: number): Map<K, V> {
  let x = m.get(vni);
  if (!x) {
    x = new Map();
    m.set(vni, x);
  }
  return x;
}

function drop<K, V>(m: Map<number, Map<K, V>>, vni: number, k: K, keep: (v: V) => boolean): void {
  const x = m.get(vni);
  const v = x?.get(k);
  if (x === undefined || v === undefined || keep(v)) return;
  x.delete(k);
  if (x.size === 0) m.delete(vni);
}

export class MappingIndex {
  private readonly hosts = new Map<string, HostRef>();
  private readonly byUnderlay = new Map<string, HostRef>();
  /** VNI -> MAC (as a number) -> host. */
  private readonly vl2 = new Map<number, Map<number, HostRef>>();
  /** VNI -> IPv4 (as a number) -> MAC and host. */
  private readonly vl3v4 = new Map<number, Map<number, L3Entry>>();
  /** VNI -> IPv6 (16 bytes as latin1) -> MAC and host. */
  private readonly vl3v6 = new Map<number, Map<string, L3Entry>>();
  private readonly hostVnis = new Map<string, Map<number, number>>();
  /** The change-log version everything here reflects. */
  version = 0;

  /** VL2 lookup by a VL2_REQ payload (mac[6], pad[2], vnetid[4]) at `at`. */
  lookupVl2(req: Buffer, at = 0): HostRef | undefined {
    return this.vl2.get(req.readUInt32BE(at + 8))?.get(req.readUIntBE(at, 6));
  }

  /**
   * VL3 lookup by a VL3_REQ payload (ip[16], type[4], vnetid[4]) at `at`.
   * Type 1 wants an IPv4-mapped address, type 2 an IPv6 one; a mismatch is
   * not found.
   */
  lookupVl3(req: Buffer, at = 0): L3Entry | undefined {
    const type = req.readUInt32BE(at + 16);
    const vni = req.readUInt32BE(at + 20);
    if (type === L3_TYPE.IPV4) {
      if (req.readUInt32BE(at) !== 0 || req.readUInt32BE(at + 4) !== 0 || req.readUInt32BE(at + 8) !== 0xffff) return undefined;
      return this.vl3v4.get(vni)?.get(req.readUInt32BE(at + 12));
    }
    if (type === L3_TYPE.IPV6) return this.vl3v6.get(vni)?.get(req.toString('latin1', at, at + 16));
    return undefined;
  }

  /** The host whose underlay address these 16 bytes are. */
  hostByUnderlay16(ip: Buffer): HostRef | undefined {
    return this.byUnderlay.get(ip.toString('latin1', 0, 16));
  }

  host(hostId: string): HostRef | undefined {
    return this.hosts.get(hostId);
  }

  /** VNIs with at least one port on this host. */
  vnisOf(hostId: string): number[] {
    return [...(this.hostVnis.get(hostId)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** The hosts with a port on this VNI (a scan: for the stream's fan-out, not the SVP hot path). */
  hostsOnVni(vni: number): string[] {
    const out: string[] = [];
    for (const [h, vnis] of this.hostVnis) if (vnis.has(vni)) out.push(h);
    return out;
  }

  get size(): { hosts: number; vl2: number; vl3: number } {
    let vl2 = 0;
    let vl3 = 0;
    for (const m of this.vl2.values()) vl2 += m.size;
    for (const m of this.vl3v4.values()) vl3 += m.size;
    for (const m of this.vl3v6.values()) vl3 += m.size;
    return { hosts: this.hosts.size, vl2, vl3 };
  }

  addHost(hostId: string, underlayIp: string): HostRef {
    const existing = this.hosts.get(hostId);
    if (existing) {
      if (existing.underlayIp !== underlayIp) this.setUnderlay(existing, underlayIp);
      return existing;
    }
    const p = parseIp('underlayIp', underlayIp);
    const ref: HostRef = { hostId, underlayIp, underlay16: ip16(p.family, p.n) };
    this.hosts.set(hostId, ref);
    this.byUnderlay.set(underlayKey(underlayIp), ref);
    return ref;
  }

  /** Every entry shares its host's HostRef, so a new underlay is one update. */
  private setUnderlay(ref: HostRef, underlayIp: string): void {
    if (this.byUnderlay.get(underlayKey(ref.underlayIp)) === ref) this.byUnderlay.delete(underlayKey(ref.underlayIp));
    const p = parseIp('underlayIp', underlayIp);
    ref.underlayIp = underlayIp;
    ref.underlay16 = ip16(p.family, p.n);
    this.byUnderlay.set(underlayKey(underlayIp), ref);
  }

  addPort(p: PortMapping): void {
    if (p.vni === null) return;
    const host = this.addHost(p.hostId, p.underlayIp);
    const mac = Number(parseMac('mac', p.mac).n);
    inner(this.vl2, p.vni).set(mac, host);
    for (const ip of [p.ipv4, p.ipv6]) {
      if (ip === null) continue;
      const a = parseIp('ip', ip);
      if (a.family === 4) inner(this.vl3v4, p.vni).set(Number(a.n), { mac, host });
      else inner(this.vl3v6, p.vni).set(v6Key(a.n), { mac, host });
    }
    this.countVni(p.hostId, p.vni, 1);
  }

  removePort(p: PortMapping): void {
    if (p.vni === null) return;
    const mac = Number(parseMac('mac', p.mac).n);
    // Only if the entry is still this port's: a later change may have reused the key.
    drop(this.vl2, p.vni, mac, (h) => h.hostId !== p.hostId);
    for (const ip of [p.ipv4, p.ipv6]) {
      if (ip === null) continue;
      const a = parseIp('ip', ip);
      if (a.family === 4) drop(this.vl3v4, p.vni, Number(a.n), (e) => e.mac !== mac);
      else drop(this.vl3v6, p.vni, v6Key(a.n), (e) => e.mac !== mac);
    }
    this.countVni(p.hostId, p.vni, -1);
  }

  private countVni(hostId: string, vni: number, d: 1 | -1): void {
    let m = this.hostVnis.get(hostId);
    if (!m) {
      if (d < 0) return;
      m = new Map();
      this.hostVnis.set(hostId, m);
    }
    const n = (m.get(vni) ?? 0) + d;
    if (n > 0) m.set(vni, n);
    else m.delete(vni);
    if (m.size === 0) this.hostVnis.delete(hostId);
  }

  /** Applies one committed change; must be called in version order. */
  apply(c: LoggedChange): void {
    switch (c.kind) {
      case 'host.created':
        this.addHost(c.host.hostId, c.host.underlayIp);
        break;
      case 'host.updated': {
        const ref = this.hosts.get(c.host.hostId);
        if (ref) {
          if (ref.underlayIp !== c.host.underlayIp) this.setUnderlay(ref, c.host.underlayIp);
        } else this.addHost(c.host.hostId, c.host.underlayIp);
        break;
      }
      case 'host.deleted': {
        const ref = this.hosts.get(c.host.hostId);
        if (ref) {
          this.hosts.delete(c.host.hostId);
          if (this.byUnderlay.get(underlayKey(ref.underlayIp)) === ref) this.byUnderlay.delete(underlayKey(ref.underlayIp));
        }
        break;
      }
      case 'port.created':
        this.addPort(c.port);
        break;
      case 'port.deleted':
        this.removePort(c.port);
        break;
      case 'port.moved':
        this.removePort({ ...c.port, hostId: c.from.hostId, underlayIp: c.from.underlayIp });
        this.addPort(c.port);
        break;
      case 'port.updated':
        this.removePort(c.before);
        this.addPort(c.port);
        break;
      default:
        break;
    }
    this.version = c.version;
  }
}
