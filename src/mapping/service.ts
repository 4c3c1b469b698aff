// The mapping service inside `weft server`: the index with its follower,
// and the SVP server answering from it.
import prom from 'prom-client';
import type { LoggedChange } from '../model/changes.js';
import type { Store } from '../store/store.js';
import { ChangeFollower } from './follower.js';
import { SvpServer, type SvpServerOptions } from './server.js';

export interface MappingService {
  follower: ChangeFollower;
  svp: SvpServer | null;
  /** Where SVP listens (port 0 resolved), or null when disabled. */
  svpAddress: { host: string; port: number } | null;
  close(): Promise<void>;
}

export async function startMapping(
  store: Store,
  o: {
    svp: { host: string; port: number } | null;
    registry: prom.Registry;
    onApplied?: (changes: readonly LoggedChange[]) => void;
    /** The SVP listener's caps and idle timeout (its defaults when absent). */
    svpOptions?: SvpServerOptions;
  },
): Promise<MappingService> {
  const follower = new ChangeFollower(store, { onApplied: o.onApplied });
  await follower.start();
  const ix = follower.index;
  new prom.Gauge({
    name: 'weft_mapping_version',
    help: 'Change-log version the in-memory mapping index reflects',
    registers: [o.registry],
    collect() {
      this.set(follower.version);
    },
  });
  new prom.Gauge({
    name: 'weft_mapping_entries',
    help: 'Entries in the in-memory mapping index, by kind (vl2, vl3, hosts)',
    labelNames: ['kind'] as const,
    registers: [o.registry],
    collect() {
      const s = ix.size;
      this.set({ kind: 'vl2' }, s.vl2);
      this.set({ kind: 'vl3' }, s.vl3);
      this.set({ kind: 'hosts' }, s.hosts);
    },
  });
  let svp: SvpServer | null = null;
  let svpAddress: { host: string; port: number } | null = null;
  if (o.svp) {
    svp = new SvpServer(ix, store, o.registry, undefined, o.svpOptions);
    try {
      svpAddress = await svp.listen(o.svp.host, o.svp.port);
    } catch (e) {
      await follower.stop();
      throw e;
    }
  }
  return {
    follower,
    svp,
    svpAddress,
    async close() {
      await svp?.close();
      await follower.stop();
    },
  };
}
