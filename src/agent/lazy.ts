// Lazy mode, as an illumos varpd does it: nothing remote is programmed up
// front; the kernel's l2miss/l3miss notifications (vxlan `proxy l2miss
// l3miss`) are answered with SVP lookups, and SVP's shoot-down log removes
// entries that became wrong (LOG_REQ, then LOG_RM once removed). The misses
// are watched and the entries written through the Dataplane.
import { SvpClient } from '../mapping/client.js';
import { fromIp16, ip16 } from '../mapping/codec.js';
import { L3_TYPE, STATUS } from '../mapping/wire.js';
import { formatIp, formatMac, parseIp, parseMac } from '../model/addr.js';
import { WeftError } from '../model/errors.js';
import type { Log } from '../sys/log.js';
import type { Dataplane, LazyKey, Miss, Watch } from './dataplane/dataplane.js';

export type { Miss };

export interface LazyOptions {
  /** The server's SVP address, or its replicas': one is used at a time, the next when it fails. */
  svpHost: string | string[];
  svpPort: number;
  /** This host's underlay address: the key of its shoot-down log. */
  underlayIp: () => string | null;
  /** Where misses are read and entries written. */
  dataplane: Pick<Dataplane, 'watchMisses' | 'lazySet' | 'lazyDelete'>;
  /** How often the shoot-down log is polled (default 250 ms). */
  logPollMs?: number;
  log: Log;
}

export interface LazyStats {
  misses: number;
  resolved: number;
  notFound: number;
  shootdowns: number;
  errors: number;
}

/** The same miss is not looked up again within this long (the kernel repeats them). */
const MISS_HOLD_MS = 200;

export class LazyResolver {
  readonly stats: LazyStats = { misses: 0, resolved: 0, notFound: 0, shootdowns: 0, errors: 0 };
  private monitor: Watch | null = null;
  private client: SvpClient | null = null;
  private connecting: Promise<SvpClient> | null = null;
  private readonly recent = new Map<string, number>();
  private poller: NodeJS.Timeout | null = null;
  private polling = false;
  private stopped = false;
  private readonly hosts: string[];
  /** Index into `hosts` of the replica tried first. */
  private turn = 0;

  constructor(private readonly o: LazyOptions) {
    this.hosts = typeof o.svpHost === 'string' ? [o.svpHost] : [...o.svpHost];
    if (this.hosts.length === 0) throw new WeftError('E_INVALID_ARG', 'lazy mode needs at least one SVP server address (--server)', 'server');
  }

  start(): void {
    if (!this.stopped) this.monitor = this.o.dataplane.watchMisses((m) => void this.resolve(m));
    this.poller = setInterval(() => void this.pollLog(), this.o.logPollMs ?? 250);
    this.poller.unref();
  }

  private svp(): Promise<SvpClient> {
    if (this.client && !this.client.closed) return Promise.resolve(this.client);
    if (this.client) {
      // Its replica went away: the next one is tried first.
      this.client = null;
      this.turn = (this.turn + 1) % this.hosts.length;
    }
    this.connecting ??= this.connectAny()
      .then((c) => {
        this.client = c;
        return c;
      })
      .finally(() => {
        this.connecting = null;
      });
    return this.connecting;
  }

  /** Connects to the first replica that accepts, from `turn` on; throws the last error if none does. */
  private async connectAny(): Promise<SvpClient> {
    let last: unknown = null;
    for (let i = 0; i < this.hosts.length; i++) {
      const at = (this.turn + i) % this.hosts.length;
      try {
        const c = await SvpClient.connect(this.hosts[at] as string, this.o.svpPort);
        this.turn = at;
        return c;
      } catch (e) {
        last = e;
      }
    }
    throw last;
  }

  /** Answers one miss: looks it up and programs the entry, or leaves it (NOTFOUND). */
  async resolve(m: Miss): Promise<void> {
    const key = m.kind === 'l3' ? `3|${m.vni}|${m.ip}` : `2|${m.vni}|${m.mac}`;
    const now = Date.now();
    if ((this.recent.get(key) ?? 0) > now) return;
    this.recent.set(key, now + MISS_HOLD_MS);
    if (this.recent.size > 10_000) for (const [k, t] of this.recent) if (t <= now) this.recent.delete(k);
    this.stats.misses++;
    try {
      const c = await this.svp();
      if (m.kind === 'l3') {
        const p = parseIp('ip', m.ip);
        const a = await c.vl3(ip16(p.family, p.n), p.family === 4 ? L3_TYPE.IPV4 : L3_TYPE.IPV6, m.vni);
        if (a.status !== STATUS.OK) {
          this.stats.notFound++;
          return;
        }
        const mac = formatMac(a.mac);
        const u = fromIp16(a.uip);
        await this.o.dataplane.lazySet({ kind: 'l3', vni: m.vni, ip: p.text, mac, dst: formatIp(u.family, u.n) });
      } else {
        const a = await c.vl2(parseMac('mac', m.mac).n, m.vni);
        if (a.status !== STATUS.OK) {
          this.stats.notFound++;
          return;
        }
        const u = fromIp16(a.addr);
        await this.o.dataplane.lazySet({ kind: 'l2', vni: m.vni, mac: m.mac, dst: formatIp(u.family, u.n) });
      }
      this.stats.resolved++;
    } catch (e) {
      this.stats.errors++;
      this.recent.delete(key);
      this.o.log.warn('lazy lookup failed', { miss: m, error: (e as Error).message });
    }
  }

  /** Applies this host's shoot-downs: removes the named entries, then acknowledges them. */
  async pollLog(): Promise<void> {
    const ul = this.o.underlayIp();
    if (this.polling || this.stopped || !ul) return;
    this.polling = true;
    try {
      const c = await this.svp();
      const p = parseIp('underlayIp', ul);
      const r = await c.log(ip16(p.family, p.n), 64);
      if (r.entries.length === 0) return;
      const keys: LazyKey[] = r.entries.map((e) => {
        if (e.type !== 'vl3') return { kind: 'l2', vni: e.vnetid, mac: formatMac(e.mac) };
        const a = fromIp16(e.ip);
        return { kind: 'l3', vni: e.vnetid, ip: formatIp(a.family, a.n) };
      });
      // Entries already gone are fine: the goal is that they are not there.
      await this.o.dataplane.lazyDelete(keys);
      await c.logRemove(r.entries.map((e) => e.id));
      this.stats.shootdowns += r.entries.length;
    } catch (e) {
      this.stats.errors++;
      this.o.log.warn('shoot-down poll failed', { error: (e as Error).message });
    } finally {
      this.polling = false;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.poller) clearInterval(this.poller);
    this.monitor?.stop();
    this.client?.close();
  }
}
