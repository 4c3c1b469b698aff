// Lazy mode's kernel side on Linux: the misses read from `ip monitor neigh`
// (parseMiss, pure), the answers installed as permanent entries on
// `wvx<vni>`, and the shoot-downs removed in one batch per tool.
import { createInterface } from 'node:readline';
import type { Runner } from '../../../sys/exec.js';
import { vniOfDevice, vxlanName } from '../../names.js';
import type { LazyEntry, LazyKey, Miss, Watch } from '../dataplane.js';
import { watchMonitor } from './monitor.js';

/** One line of `ip monitor neigh` as a miss on a weft vxlan device, or null. */
export function parseMiss(line: string): Miss | null {
  const l3 = /^miss (\S+) dev (wvx\d+)\b/.exec(line);
  if (l3?.[1] && l3[2]) {
    const vni = vniOfDevice(l3[2]);
    return vni === null ? null : { kind: 'l3', vni, ip: l3[1] };
  }
  const l2 = /^miss dev (wvx\d+) lladdr ([0-9a-f:]{17})\b/.exec(line);
  if (l2?.[1] && l2[2]) {
    const vni = vniOfDevice(l2[1]);
    return vni === null ? null : { kind: 'l2', vni, mac: l2[2] };
  }
  return null;
}

/** The `ip -batch` and `bridge -batch` lines that remove lazy entries (neighbours, VTEP entries). */
export function lazyDeleteLines(keys: LazyKey[]): { ip: string[]; bridge: string[] } {
  const ip: string[] = [];
  const bridge: string[] = [];
  for (const k of keys) {
    const vx = vxlanName(k.vni);
    if (k.kind === 'l3') ip.push(`neigh del ${k.ip} dev ${vx}`);
    else bridge.push(`fdb del ${k.mac} dev ${vx} self`);
  }
  return { ip, bridge };
}

/** Lazy mode's entries and misses in one host's kernel (or a named namespace's). */
export class LazyEntries {
  private readonly ns: string[];

  constructor(
    private readonly run: Runner,
    private readonly netns?: string,
  ) {
    this.ns = netns ? ['-n', netns] : [];
  }

  watchMisses(onMiss: (m: Miss) => void): Watch {
    return watchMonitor(this.netns, ['monitor', 'neigh'], (out) => {
      createInterface({ input: out }).on('line', (line) => {
        const m = parseMiss(line);
        if (m) onMiss(m);
      });
    });
  }

  async set(e: LazyEntry): Promise<void> {
    const vx = vxlanName(e.vni);
    await this.run('bridge', [...this.ns, 'fdb', 'replace', e.mac, 'dev', vx, 'dst', e.dst, 'self', 'permanent']);
    if (e.kind === 'l3') await this.run('ip', [...this.ns, 'neigh', 'replace', e.ip, 'lladdr', e.mac, 'dev', vx, 'nud', 'permanent']);
  }

  async delete(keys: LazyKey[]): Promise<void> {
    const { ip, bridge } = lazyDeleteLines(keys);
    // Entries already gone are fine: the goal is that they are not there.
    if (ip.length) await this.run('ip', [...this.ns, '-force', '-batch', '-'], { input: `${ip.join('\n')}\n`, okCodes: [1, 2] });
    if (bridge.length) await this.run('bridge', [...this.ns, '-force', '-batch', '-'], { input: `${bridge.join('\n')}\n`, okCodes: [1, 2] });
  }
}
