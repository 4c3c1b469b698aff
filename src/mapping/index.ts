// The in-memory mapping index: (VNI, MAC) -> host, (VNI, IP) -> MAC and
// host, underlay IP -> host, and the VNIs present on each host. Fed only by
// the change log, so it is never stale by more than the time to apply a
// committed change; lookups never touch the store.
//
// Keys are binary strings cut straight from request bytes (latin1: one char
// per byte): VL2 is mac[6] + vni[4], VL3 is ip[16] + vni[4]. A lookup is a
// slice of the request payload and one Map probe; nothing is parsed.
import { parseIp, parseMac } from '../model/addr.js';
import type { LoggedChange, PortMapping } from '../model/changes.js';
import { ip16 } from './codec.js';

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

const vniKey = (vni: number): string => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(vni, 0);
  return b.toString('latin1');
};
export const vl2Key = (mac: string, vni: number): string => Buffer.from(mac.replace(/:/g, ''), 'hex').toString('latin1') + vniKey(vni);
export const vl3Key = (ip: string, vni: number): string => {
  const p = parseIp('ip', ip);
  return ip16(p.family, p.n).toString('latin1') + vniKey(vni);
};
const underlayKey = (ip: string): string => {
  const p = parseIp('underlayIp', ip);
  return ip16(p.family, p.n).toString('latin1');
};

export class MappingIndex {
  private readonly hosts = new Map<string, HostRef>();
  private readonly byUnderlay = new Map<string, HostRef>();
  private readonly vl2 = new Map<string, HostRef>();
  private readonly vl3 = new Map<string, L3Entry>();
  private readonly hostVnis = new Map<string, Map<number, number>>();
  /** The change-log version everything here reflects. */
  version = 0;

  /** VL2 lookup by the VL2_REQ payload (mac[6], pad[2], vnetid[4]). */
  lookupVl2(req: Buffer): HostRef | undefined {
    return this.vl2.get(req.toString('latin1', 0, 6) + req.toString('latin1', 8, 12));
  }

  /** VL3 lookup by the VL3_REQ payload (ip[16], type[4], vnetid[4]). */
  lookupVl3(req: Buffer): L3Entry | undefined {
    return this.vl3.get(req.toString('latin1', 0, 16) + req.toString('latin1', 20, 24));
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
    return { hosts: this.hosts.size, vl2: this.vl2.size, vl3: this.vl3.size };
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
    this.vl2.set(vl2Key(p.mac, p.vni), host);
    const mac = Number(parseMac('mac', p.mac).n);
    for (const ip of [p.ipv4, p.ipv6]) if (ip !== null) this.vl3.set(vl3Key(ip, p.vni), { mac, host });
    this.countVni(p.hostId, p.vni, 1);
  }

  removePort(p: PortMapping): void {
    if (p.vni === null) return;
    const k2 = vl2Key(p.mac, p.vni);
    if (this.vl2.get(k2)?.hostId === p.hostId) this.vl2.delete(k2);
    const mac = Number(parseMac('mac', p.mac).n);
    for (const ip of [p.ipv4, p.ipv6]) {
      if (ip === null) continue;
      const k3 = vl3Key(ip, p.vni);
      if (this.vl3.get(k3)?.mac === mac) this.vl3.delete(k3);
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
