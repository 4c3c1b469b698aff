// A plan as iproute2 batch lines (pure): `ip -batch -` and `bridge -batch -`
// text in the order the kernel needs, each line tied to the step it belongs
// to so a failed line is reported against its step. The text is made as it
// is written to the tool (20k steps are some 3 MB of it) and not kept; a
// failed line's text is made again for its report.

import { bridgeMac, bridgeName, OWNER_ALIAS, vxlanName } from '../../names.js';
import type { Op, Plan } from '../dataplane.js';
import type { GuardPort } from '../guard-spec.js';
import { parseFailed } from './batch-process.js';

/** The three batches, in the order they run: devices (`ip`), bridge ports and FDB (`bridge`), neighbours (`ip`). */
export type BatchName = 'links' | 'fdb' | 'neigh';

/** The steps that are not batch lines: nftables guards and announcements. */
export interface Rendered {
  guardsSet: { op: number; port: GuardPort }[];
  guardsDel: { op: number; ifname: string }[];
  announce: { op: number; ifname: string; vni: number; mac: string; ips: string[] }[];
}

export const VXLAN_PORT = 4789;

/** Where a step's lines go: device deletions come first in the links batch, freeing names for re-creation. */
type Part = BatchName | 'dels';
const PARTS: Record<BatchName, Part[]> = { links: ['dels', 'links'], fdb: ['fdb'], neigh: ['neigh'] };

/** The lines of step `o` in part `to`; `soft` lines are deletions whose "not found" is success. */
function stepLines(o: Op, to: Part, line: (text: string, soft: boolean) => void): void {
  switch (o.op) {
    case 'vni.add': {
      const { vni, mtu, local, lazy } = o.vni;
      const vx = vxlanName(vni);
      const br = bridgeName(vni);
      if (to === 'links') {
        const miss = lazy ? ' proxy l2miss l3miss' : '';
        line(`link add ${vx} mtu ${mtu} type vxlan id ${vni} local ${local} dstport ${VXLAN_PORT} nolearning${miss}`, false);
        line(`link set dev ${vx} addrgenmode none alias ${OWNER_ALIAS}`, false);
        line(`link add ${br} address ${bridgeMac(vni)} mtu ${mtu} type bridge mcast_snooping 0`, false);
        // No address of the host's own on a tenant network: no link-local, no RS or MLD into it.
        line(`link set dev ${br} addrgenmode none alias ${OWNER_ALIAS}`, false);
        line(`link set dev ${vx} master ${br} up`, false);
        line(`link set dev ${br} up`, false);
      } else if (to === 'fdb') line(`link set dev ${vx} learning off${lazy ? '' : ' neigh_suppress on'}`, false);
      break;
    }
    case 'vni.mtu':
      if (to !== 'links') break;
      line(`link set dev ${vxlanName(o.vni)} mtu ${o.mtu}`, false);
      line(`link set dev ${bridgeName(o.vni)} mtu ${o.mtu}`, false);
      break;
    case 'vni.del':
      if (to !== 'dels') break;
      line(`link del ${bridgeName(o.vni)}`, true);
      line(`link del ${vxlanName(o.vni)}`, true);
      break;
    case 'port.plug':
      if (to === 'links') line(`link set dev ${o.plug.ifname} master ${bridgeName(o.plug.vni)} mtu ${o.plug.mtu} up`, false);
      else if (to === 'fdb') line(`link set dev ${o.plug.ifname} learning off`, false);
      break;
    case 'port.unplug':
      if (to === 'neigh') line(`link set dev ${o.plug.ifname} nomaster`, true);
      break;
    case 'fdb.set': {
      if (to !== 'fdb') break;
      const vx = vxlanName(o.vni);
      if (o.dst.startsWith('@')) {
        if (o.was !== undefined && !o.was.startsWith('@')) line(`fdb del ${o.mac} dev ${vx} self`, true);
        line(`fdb replace ${o.mac} dev ${o.dst.slice(1)} master static`, false);
      } else {
        line(`fdb replace ${o.mac} dev ${vx} dst ${o.dst} self permanent`, false);
        line(`fdb replace ${o.mac} dev ${vx} master static`, false);
      }
      break;
    }
    case 'fdb.del':
      if (to !== 'fdb') break;
      if (o.was.startsWith('@')) line(`fdb del ${o.mac} dev ${o.was.slice(1)} master`, true);
      else {
        line(`fdb del ${o.mac} dev ${vxlanName(o.vni)} self`, true);
        line(`fdb del ${o.mac} dev ${vxlanName(o.vni)} master`, true);
      }
      break;
    case 'neigh.set':
      if (to === 'neigh') line(`neigh replace ${o.ip} lladdr ${o.mac} dev ${bridgeName(o.vni)} nud permanent`, false);
      break;
    case 'neigh.del':
      if (to === 'neigh') line(`neigh del ${o.ip} dev ${bridgeName(o.vni)}`, true);
      break;
    default:
      break;
  }
}

/** The steps of a plan that are not batch lines. */
export function render(plan: Plan): Rendered {
  const r: Rendered = { guardsSet: [], guardsDel: [], announce: [] };
  plan.ops.forEach((o, i) => {
    if (o.op === 'guard.set') r.guardsSet.push({ op: i, port: o.port });
    else if (o.op === 'guard.del') r.guardsDel.push({ op: i, ifname: o.ifname });
    else if (o.op === 'announce') r.announce.push({ op: i, ifname: o.ifname, vni: o.vni, mac: o.mac, ips: o.ips });
  });
  return r;
}

/** Whether the plan has a line for batch `name` (the steps in `skip` left out). */
export function hasLines(plan: Plan, name: BatchName, skip?: ReadonlySet<number>): boolean {
  let any = false;
  const seen = () => {
    any = true;
  };
  for (const part of PARTS[name])
    for (let at = 0; at < plan.ops.length; at++) {
      if (skip?.has(at)) continue;
      stepLines(plan.ops[at] as Op, part, seen);
      if (any) return true;
    }
  return false;
}

/** Lines per piece of a batch's input. */
const PIECE = 1000;

/**
 * One batch of a plan: its text a piece (of whole lines) at a time, and the
 * step and softness of every line handed out so far (for `failures`). The
 * steps in `skip` (not to be run: already reported failed) get no line.
 */
export class BatchInput {
  lines = 0;
  private op = new Int32Array(1024);
  private soft = new Uint8Array(1024);

  constructor(
    private readonly plan: Plan,
    readonly name: BatchName,
    private readonly skip?: ReadonlySet<number>,
  ) {}

  *text(): Generator<string> {
    let out: string[] = [];
    let at = 0;
    const line = (text: string, soft: boolean) => {
      out.push(text);
      this.record(at, soft);
    };
    for (const part of PARTS[this.name])
      for (at = 0; at < this.plan.ops.length; at++) {
        if (this.skip?.has(at)) continue;
        stepLines(this.plan.ops[at] as Op, part, line);
        if (out.length >= PIECE) {
          yield `${out.join('\n')}\n`;
          out = [];
        }
      }
    if (out.length > 0) yield `${out.join('\n')}\n`;
  }

  /**
   * The steps whose lines failed, from a `-force` batch's stderr: iproute2
   * prints the error, then `Command failed -:<line>`. Deletions of what is
   * already gone are not failures.
   */
  failures(stderr: string): { op: number; error: string }[] {
    return this.failuresOf({ failed: parseFailed(stderr), lost: null });
  }

  /**
   * The steps whose lines failed, from what a batch process reported
   * (`BatchOutcome`, lines 1-based). When the batch was `lost` (its process
   * died or hung) every step with a line in the batch counts as failed.
   */
  failuresOf(o: { failed: { line: number; error: string }[]; lost: string | null }): { op: number; error: string }[] {
    const out: { op: number; error: string }[] = [];
    for (const f of o.failed) {
      const i = f.line - 1;
      if (i < 0 || i >= this.lines) continue;
      if (this.soft[i] === 1 && NOT_FOUND.test(f.error)) continue;
      out.push({ op: this.op[i] as number, error: `${this.lineText(i)}: ${f.error}` });
    }
    if (o.lost !== null) {
      // Every step with a line in this batch, written or not (the input may have stopped early).
      const seen = new Set(out.map((f) => f.op));
      for (let at = 0; at < this.plan.ops.length; at++) {
        if (seen.has(at) || this.skip?.has(at)) continue;
        let first: string | null = null;
        for (const part of PARTS[this.name])
          stepLines(this.plan.ops[at] as Op, part, (text) => {
            first ??= text;
          });
        if (first !== null) out.push({ op: at, error: `${first}: ${o.lost}` });
      }
    }
    return out;
  }

  /** Line `i` (0-based) made again: a step's lines are consecutive in a batch. */
  lineText(i: number): string {
    const op = this.op[i] as number;
    let first = i;
    while (first > 0 && this.op[first - 1] === op) first--;
    const texts: string[] = [];
    for (const part of PARTS[this.name]) stepLines(this.plan.ops[op] as Op, part, (text) => texts.push(text));
    return texts[i - first] ?? '';
  }

  private record(op: number, soft: boolean): void {
    if (this.lines === this.op.length) {
      const op2 = new Int32Array(this.op.length * 2);
      op2.set(this.op);
      this.op = op2;
      const soft2 = new Uint8Array(this.soft.length * 2);
      soft2.set(this.soft);
      this.soft = soft2;
    }
    this.op[this.lines] = op;
    this.soft[this.lines] = soft ? 1 : 0;
    this.lines++;
  }
}

const NOT_FOUND = /No such file or directory|Cannot find device|does not exist|No such device|Object not found/;
