// Applies and reads back the port guards of guards.ts with the `nft` tool:
// whole-table replacement, one-transaction incremental changes, and the
// per-port spec hashes and per-guard counters parsed from `nft -j`.

import { WeftError } from '../../../model/errors.js';
import type { Runner } from '../../../sys/exec.js';
import { type GuardPort, normalGuardPort } from '../guard-spec.js';
import { GUARD_FAMILY, GUARD_TABLE, PORT_CHAIN_PREFIX, PORTS_IN, PORTS_OUT, renderGuardChanges, renderGuardTable, SPEC_COMMENT_PREFIX } from './guards.js';

/** Packets and bytes one guard dropped on one port; `ifname` is '' for the host-wide `egress-*` guards. */
export interface GuardCounter {
  ifname: string;
  guard: string;
  packets: number;
  bytes: number;
}

// The parts of `nft -j list table` this file reads.
interface NftObject {
  map?: { name: string; table: string; elem?: unknown[] };
  set?: { name: string; table: string; elem?: unknown[] };
  rule?: { chain: string; table: string; comment?: string; expr?: unknown[] };
  counter?: { name: string; table: string; packets: number; bytes: number };
}

/**
 * nft runs setEach may spend looking for the ports a failed transaction's
 * refusal comes from (halving it): some 2·log2(n) per refused port, so one
 * or two such ports among 20k are found; past it the rest fail together.
 */
export const SPLIT_BUDGET = 48;

export class NftGuards {
  /** `run` executes `nft`; `netns` (optional) is the named network namespace to work in. */
  constructor(
    private readonly run: Runner,
    private readonly netns?: string,
  ) {}

  /**
   * The guarded ports and the spec hash each one's chain was rendered from
   * (compare with guardSpecHash). A port counts only when its chain ends with
   * the spec rule and both its map and set elements exist. Empty when the
   * table does not exist. Throws E_DATAPLANE when nft fails otherwise.
   */
  async observe(): Promise<Map<string, string>> {
    const objs = await this.list();
    const out = new Map<string, string>();
    if (objs === null) return out;
    const jumps = new Map<string, string>();
    const outPorts = new Set<string>();
    const specs = new Map<string, string>();
    for (const o of objs) {
      if (o.map?.name === PORTS_IN) {
        for (const e of o.map.elem ?? []) {
          if (!Array.isArray(e) || typeof e[0] !== 'string') continue;
          const target = (e[1] as { jump?: { target?: unknown } } | undefined)?.jump?.target;
          if (typeof target === 'string') jumps.set(e[0], target);
        }
      } else if (o.set?.name === PORTS_OUT) {
        for (const e of o.set.elem ?? []) if (typeof e === 'string') outPorts.add(e);
      } else if (o.rule?.chain.startsWith(PORT_CHAIN_PREFIX) && o.rule.comment?.startsWith(SPEC_COMMENT_PREFIX)) {
        specs.set(o.rule.chain.slice(PORT_CHAIN_PREFIX.length), o.rule.comment.slice(SPEC_COMMENT_PREFIX.length));
      }
    }
    for (const [ifname, hash] of specs) {
      if (jumps.get(ifname) === `${PORT_CHAIN_PREFIX}${ifname}` && outPorts.has(ifname)) out.set(ifname, hash);
    }
    return out;
  }

  /** Replaces the whole table with guards for exactly `ports` (one transaction; resets counters). */
  async sync(ports: GuardPort[]): Promise<void> {
    await this.nft(['-f', '-'], renderGuardTable(ports));
  }

  /**
   * Adds or replaces the guards of `add` and removes those of `remove` in one
   * `nft -f -` transaction: all or nothing, other ports untouched. Idempotent;
   * creates the table when missing. No call at all when both are empty.
   */
  async apply(c: { add: GuardPort[]; remove: string[] }): Promise<void> {
    if (c.add.length === 0 && c.remove.length === 0) return;
    await this.nft(['-f', '-'], renderGuardChanges(c));
  }

  /**
   * Adds or replaces the guards of `ports`, each port on its own: one
   * failing port never costs the others theirs. A port the renderer refuses
   * (normalGuardPort: E_INVALID_ARG) is never given to nft; the others go in
   * one transaction (all or nothing, as `apply`), and when nft refuses it,
   * in halves of it, recursively, until the ports it refuses are alone
   * (at most SPLIT_BUDGET runs). Several entries for one port are applied in
   * order (one transaction per repetition). Returns the ports whose guard is
   * not in place, by index in `ports`, with why; never throws.
   */
  async setEach(ports: GuardPort[]): Promise<Map<number, string>> {
    const failed = new Map<number, string>();
    // Round k holds each port's k-th entry: a transaction names a port once.
    const rounds: number[][] = [];
    const seen = new Map<string, number>();
    ports.forEach((p, i) => {
      try {
        normalGuardPort(p);
      } catch (e) {
        failed.set(i, (e as Error).message);
        return;
      }
      const k = seen.get(p.ifname) ?? 0;
      seen.set(p.ifname, k + 1);
      let round = rounds[k];
      if (!round) {
        round = [];
        rounds[k] = round;
      }
      round.push(i);
    });
    let budget = SPLIT_BUDGET;
    let last = '';
    const attempt = async (idx: number[]): Promise<void> => {
      if (idx.length === 0) return;
      if (budget <= 0) {
        for (const i of idx) failed.set(i, `${last} (not retried alone: too many ports refused in one apply)`);
        return;
      }
      budget--;
      try {
        await this.apply({ add: idx.map((i) => ports[i] as GuardPort), remove: [] });
      } catch (e) {
        last = (e as Error).message;
        if (idx.length === 1) {
          failed.set(idx[0] as number, last);
          return;
        }
        const half = idx.length >> 1;
        await attempt(idx.slice(0, half));
        await attempt(idx.slice(half));
      }
    };
    for (const round of rounds) await attempt(round);
    return failed;
  }

  /**
   * Every drop counter by port and guard (rules of one guard in a port chain
   * summed), in table order; the final accept rule is not a guard and is left
   * out. Empty when the table does not exist. Counters restart at 0 when a
   * port's chain is rewritten.
   */
  async counters(): Promise<GuardCounter[]> {
    const objs = await this.list();
    if (objs === null) return [];
    const out = new Map<string, GuardCounter>();
    const add = (ifname: string, guard: string, packets: number, bytes: number) => {
      const key = `${ifname}|${guard}`;
      const c = out.get(key);
      if (c) {
        c.packets += packets;
        c.bytes += bytes;
      } else out.set(key, { ifname, guard, packets, bytes });
    };
    for (const o of objs) {
      if (o.counter) add('', o.counter.name, o.counter.packets, o.counter.bytes);
      const r = o.rule;
      if (!r?.chain.startsWith(PORT_CHAIN_PREFIX) || !r.comment || r.comment.startsWith(SPEC_COMMENT_PREFIX)) continue;
      for (const e of r.expr ?? []) {
        const c = (e as { counter?: unknown }).counter;
        if (c && typeof c === 'object') {
          const { packets, bytes } = c as { packets: number; bytes: number };
          add(r.chain.slice(PORT_CHAIN_PREFIX.length), r.comment, packets, bytes);
        }
      }
    }
    return [...out.values()];
  }

  /** The table's objects, or null when it does not exist. */
  private async list(): Promise<NftObject[] | null> {
    const r = await this.nft(['-j', 'list', 'table', GUARD_FAMILY, GUARD_TABLE], undefined, [1]);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return null;
      throw new WeftError('E_DATAPLANE', `nft list table ${GUARD_FAMILY} ${GUARD_TABLE}: ${r.stderr.trim().slice(0, 2000)}`);
    }
    try {
      const doc = JSON.parse(r.stdout) as { nftables?: NftObject[] };
      return (doc.nftables ?? []).filter((o) => {
        const table = o.map?.table ?? o.set?.table ?? o.rule?.table ?? o.counter?.table;
        return table === undefined || table === GUARD_TABLE;
      });
    } catch (e) {
      throw new WeftError('E_DATAPLANE', `nft -j list table ${GUARD_FAMILY} ${GUARD_TABLE}: unreadable JSON: ${(e as Error).message}`);
    }
  }

  private nft(args: string[], input?: string, okCodes?: number[]) {
    return this.run('nft', args, { input, netns: this.netns, okCodes });
  }
}
