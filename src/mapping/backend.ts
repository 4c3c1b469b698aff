// The SVP server's backend stage: what a parsed request is answered from.
// Lookups come from the in-memory index (synchronous, allocation-free);
// the shoot-down log (LOG_REQ, LOG_RM) from the store, bound to the
// connection's source address: a host's log is served and trimmed only for
// an address the index has registered for it (docs/protocol.md).
import { parseIp, parseMac } from '../model/addr.js';
import type { Store } from '../store/store.js';
import { ip16, type LogEntry, type LogReq } from './codec.js';
import { type MappingIndex, svpSourceKey } from './index.js';
import { SIZE, STATUS } from './wire.js';

/** The most a LOG_ACK may carry, whatever budget the client asks for. */
export const MAX_LOG_BUDGET = 64 * 1024;

/** A mapped host as a lookup answers it: its underlay, 16 bytes as SVP carries it. */
export interface SvpHost {
  underlay16: Uint8Array;
}

/**
 * What the SVP server asks. The lookups read the request payload in place
 * (the bytes are valid only during the call), never throw, never allocate,
 * and answer undefined for a miss. The log calls may reject (a store
 * failure): the server then answers FATAL.
 */
export interface SvpBackend {
  /** The host of the (VNI, MAC) of a VL2_REQ payload at `at`. */
  lookupVl2(req: Buffer, at: number): SvpHost | undefined;
  /** The MAC (48 bits as a number) and host of the (VNI, IP) of a VL3_REQ payload at `at`; a type other than IPv4/IPv6 is a miss. */
  lookupVl3(req: Buffer, at: number): { mac: number; host: SvpHost } | undefined;
  /**
   * The status and entries of a LOG_ACK for this request from a connection
   * whose remote address is `source`, within its budget (capped at
   * MAX_LOG_BUDGET), oldest first. A source not registered for the host
   * gets an empty log.
   */
  log(req: LogReq, source: string | undefined): Promise<{ status: number; entries: LogEntry[]; budget: number }>;
  /** Removes shoot-downs by id, of the hosts `source` is registered for only; ids already gone are fine (idempotent). */
  remove(ids: Buffer[], source: string | undefined): Promise<void>;
}

/** The real backend: the mapping index and the store's shoot-down log. */
export class IndexBackend implements SvpBackend {
  constructor(
    private readonly index: MappingIndex,
    private readonly store: Store,
  ) {}

  lookupVl2(req: Buffer, at: number): SvpHost | undefined {
    return this.index.lookupVl2(req, at);
  }

  lookupVl3(req: Buffer, at: number): { mac: number; host: SvpHost } | undefined {
    return this.index.lookupVl3(req, at);
  }

  /** LOG_ACK for the host whose underlay the request names: its entries, oldest first, within the budget, if `source` may read them. */
  async log(req: LogReq, source: string | undefined): Promise<{ status: number; entries: LogEntry[]; budget: number }> {
    const budget = Math.min(req.count, MAX_LOG_BUDGET);
    const host = this.index.hostByUnderlay16(req.ip);
    if (!host) return { status: STATUS.NOTFOUND, entries: [], budget };
    // Anyone can name a host's underlay; only its registered addresses may read its log.
    if (!this.index.svpServes(host, svpSourceKey(source))) return { status: STATUS.OK, entries: [], budget };
    const most = Math.max(0, Math.floor((budget - SIZE.LOG_ACK_HEAD) / SIZE.LOG_VL2));
    // Only what this replica's index already has: a host told to look an entry up
    // again must get the new answer, not the one the shoot-down is about.
    const seen = this.index.version;
    const rows = most === 0 ? [] : (await this.store.read((tx) => tx.shootdownsOf(host.hostId, most))).filter((r) => Number(r.version) <= seen);
    const entries: LogEntry[] = rows.map((r) => {
      const id = Buffer.from(r.id, 'hex');
      if (r.kind === 'vl2') return { type: 'vl2', id, mac: parseMac('mac', r.mac).n, vnetid: r.vni };
      const ip = parseIp('ip', r.ip);
      return { type: 'vl3', id, ip: ip16(ip.family, ip.n), vlan: 0, vnetid: r.vni };
    });
    return { status: STATUS.OK, entries, budget };
  }

  remove(ids: Buffer[], source: string | undefined): Promise<void> {
    // Ids are 128 random bits, but a connection trims only the logs it may read.
    const hosts = this.index.svpHostsServed(svpSourceKey(source));
    if (hosts.length === 0) return Promise.resolve();
    return this.store.removeShootdowns(
      ids.map((b) => b.toString('hex')),
      hosts,
    );
  }
}
