// The in-memory mapping index: (VNI, MAC) -> host, (VNI, IP) -> MAC and
// host, underlay IP -> host, and the VNIs present on each host. Fed only by
// the change log, so it is never stale by more than the time to apply a
// committed change; lookups never touch the store. It also knows, per host,
// which connection source addresses may read and trim its SVP shoot-down log.
//
// VL2 and IPv4 VL3 live in flat tables (FlatTable: one Uint32Array, no
// objects per entry) keyed by words read straight from the request: VNI,
// MAC high 16 and low 32 bits, or VNI and IPv4. IPv6 VL3 uses Maps keyed by
// the 16 address bytes as a one-byte-per-char string.
import { ipv4Number, ipv6Key, macNumber, parseIp, parseMac } from '../model/addr.js';
import type { HostInfo, LoggedChange, PortMapping } from '../model/changes.js';
import { ip16 } from './codec.js';
import { FlatTable } from './flat-table.js';
import { L3_TYPE } from './wire.js';
export interface HostRef {
  /** Position in the index's host list: what the flat tables store. */
  idx: number;
  hostId: string;
  underlayIp: string;
  /** The underlay as SVP sends it (16 bytes, IPv4-mapped). */
  underlay16: Buffer;
  /** The operator made it an SVP client: its log is served (to `svpSources` and its underlay). */
  svpClient: boolean;
  /** Its svpClientAddresses as source keys (svpSourceKey). */
  svpSources: Set<string>;
}

/** Who may read and trim a host's SVP log, as its HostInfo says (absent before migration 0008: nobody). */
export type SvpBinding = Pick<HostInfo, 'svpClient' | 'svpClientAddresses'>;

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

/**
 * A connection's remote address as the key the index binds SVP logs by: the
 * 16 bytes SVP would carry, so `::ffff:a.b.c.d` (IPv4 on a `::` listener)
 * and `a.b.c.d` are the same source. A zone id is dropped (the kernel adds
 * it to link-local peers); an address that does not parse is no source (null).
 */
export function svpSourceKey(remote: string | undefined): string | null {
  if (remote === undefined) return null;
  const zone = remote.indexOf('%');
  try {
    return underlayKey(zone < 0 ? remote : remote.slice(0, zone));
  } catch {
    return null;
  }
}

const sourcesOf = (b: SvpBinding): Set<string> => new Set((b.svpClientAddresses ?? []).map(underlayKey));

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
  /** Hosts by idx (a deleted host's slot stays; hosts are few). */
  private readonly hostList: HostRef[] = [];
  /** (VNI, MAC high 16, MAC low 32) -> [host idx]. */
  private readonly vl2 = new FlatTable(1 << 16);
  /** (VNI, IPv4, 0) -> [MAC high 16, MAC low 32, host idx]. */
  private readonly vl3v4 = new FlatTable(1 << 16);
  /** VNI -> IPv6 (16 bytes as latin1) -> MAC and host. */
  private readonly vl3v6 = new Map<number, Map<string, L3Entry>>();
  private readonly hostVnis = new Map<string, Map<number, number>>();
  /** The change-log version everything here reflects. */
  version = 0;

  /** VL2 lookup by a VL2_REQ payload (mac[6], pad[2], vnetid[4]) at `at`. */
  lookupVl2(req: Buffer, at = 0): HostRef | undefined {
    const slot = this.vl2.find(req.readUInt32BE(at + 8), req.readUInt16BE(at), req.readUInt32BE(at + 2));
    return slot < 0 ? undefined : this.hostList[this.vl2.value(slot, 0)];
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
      const slot = this.vl3v4.find(vni, req.readUInt32BE(at + 12), 0);
      if (slot < 0) return undefined;
      return { mac: this.vl3v4.value(slot, 0) * 0x100000000 + this.vl3v4.value(slot, 1), host: this.hostList[this.vl3v4.value(slot, 2)] as HostRef };
    }
    if (type === L3_TYPE.IPV6) return this.vl3v6.get(vni)?.get(req.toString('latin1', at, at + 16));
    return undefined;
  }

  /** The host whose underlay address these 16 bytes are. */
  hostByUnderlay16(ip: Buffer): HostRef | undefined {
    return this.byUnderlay.get(ip.toString('latin1', 0, 16));
  }

  /**
   * Whether a connection from `source` (svpSourceKey) may read and trim the
   * log of `host`: the host is an SVP client and the source is its underlay
   * or one of its svpClientAddresses.
   */
  svpServes(host: HostRef, source: string | null): boolean {
    if (!host.svpClient || source === null || this.hosts.get(host.hostId) !== host) return false;
    return host.svpSources.has(source) || host.underlay16.toString('latin1') === source;
  }

  /** The hosts whose SVP log a connection from `source` may read and trim. */
  svpHostsServed(source: string | null): string[] {
    if (source === null) return [];
    const out: string[] = [];
    for (const h of this.hosts.values()) if (this.svpServes(h, source)) out.push(h.hostId);
    return out;
  }

  /** VNIs with at least one port on this host. */
  vnisOf(hostId: string): number[] {
    return [...(this.hostVnis.get(hostId)?.keys() ?? [])].sort((a, b) => a - b);
  }

  get size(): { hosts: number; vl2: number; vl3: number } {
    let vl3 = this.vl3v4.size;
    for (const m of this.vl3v6.values()) vl3 += m.size;
    return { hosts: this.hosts.size, vl2: this.vl2.size, vl3 };
  }

  /** Adds or updates a host; `svp` (from its HostInfo) sets who may read its SVP log, left as it is when not given. */
  addHost(hostId: string, underlayIp: string, svp?: SvpBinding): HostRef {
    const existing = this.hosts.get(hostId);
    if (existing) {
      if (existing.underlayIp !== underlayIp) this.setUnderlay(existing, underlayIp);
      if (svp) this.setSvp(existing, svp);
      return existing;
    }
    const p = parseIp('underlayIp', underlayIp);
    const ref: HostRef = {
      idx: this.hostList.length,
      hostId,
      underlayIp,
      underlay16: ip16(p.family, p.n),
      svpClient: svp?.svpClient === true,
      svpSources: svp ? sourcesOf(svp) : new Set(),
    };
    this.hostList.push(ref);
    this.hosts.set(hostId, ref);
    this.byUnderlay.set(underlayKey(underlayIp), ref);
    return ref;
  }

  private setSvp(ref: HostRef, svp: SvpBinding): void {
    ref.svpClient = svp.svpClient === true;
    ref.svpSources = sourcesOf(svp);
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
    // The numeric fast paths (a million of these at start); anything they refuse, parseMac/parseIp explain.
    const mac = macNumber(p.mac) ?? Number(parseMac('mac', p.mac).n);
    const macHi = Math.floor(mac / 0x100000000);
    const macLo = mac % 0x100000000;
    this.vl2.set(p.vni, macHi, macLo, host.idx);
    for (const ip of [p.ipv4, p.ipv6]) {
      if (ip === null) continue;
      const v4 = ipv4Number(ip);
      if (v4 !== null) {
        this.vl3v4.set(p.vni, v4, 0, macHi, macLo, host.idx);
        continue;
      }
      const v6 = ipv6Key(ip);
      if (v6 !== null) {
        inner(this.vl3v6, p.vni).set(v6, { mac, host });
        continue;
      }
      const a = parseIp('ip', ip);
      if (a.family === 4) this.vl3v4.set(p.vni, Number(a.n), 0, macHi, macLo, host.idx);
      else inner(this.vl3v6, p.vni).set(v6Key(a.n), { mac, host });
    }
    this.countVni(p.hostId, p.vni, 1);
  }

  removePort(p: PortMapping): void {
    if (p.vni === null) return;
    const mac = Number(parseMac('mac', p.mac).n);
    const macHi = Math.floor(mac / 0x100000000);
    const macLo = mac % 0x100000000;
    // Only if the entry is still this port's: a later change may have reused the key.
    const s2 = this.vl2.find(p.vni, macHi, macLo);
    if (s2 >= 0 && this.hostList[this.vl2.value(s2, 0)]?.hostId === p.hostId) this.vl2.delete(p.vni, macHi, macLo);
    for (const ip of [p.ipv4, p.ipv6]) {
      if (ip === null) continue;
      const a = parseIp('ip', ip);
      if (a.family === 4) {
        const s3 = this.vl3v4.find(p.vni, Number(a.n), 0);
        if (s3 >= 0 && this.vl3v4.value(s3, 0) === macHi && this.vl3v4.value(s3, 1) === macLo) this.vl3v4.delete(p.vni, Number(a.n), 0);
      } else drop(this.vl3v6, p.vni, v6Key(a.n), (e) => e.mac !== mac);
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
      case 'host.updated':
        this.addHost(c.host.hostId, c.host.underlayIp, c.host);
        break;
      case 'host.deleted': {
        const ref = this.hosts.get(c.host.hostId);
        if (ref) {
          this.hosts.delete(c.host.hostId);
          ref.svpClient = false;
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
