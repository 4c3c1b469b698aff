// The faults `weft lab fail|heal` injects and undoes, one file per kind, in
// one table: `Cloud.fail` and `Cloud.heal` dispatch through it, and the CLI
// reads it for `lab fail|heal <what>` (its help and the kinds it accepts).
import { conflict, invalid } from '../../model/errors.js';
import type { Cloud } from '../cloud.js';
import { list } from '../measure.js';
import { backendFault } from './backend.js';
import type { FaultKind, FaultReport, FaultType } from './fault.js';
import { hostFault } from './host.js';
import { linkFault } from './link.js';
import { serverFault } from './server.js';

export type { EvacuationReport } from './evacuate.js';
export type { Fault, FaultKind, FaultReport, FaultType, PingWindow, Timing } from './fault.js';

/** Every kind of fault, in the order `--help` lists them. */
export const FAULTS: { readonly [K in FaultKind]: FaultType } = {
  host: hostFault,
  backend: backendFault,
  link: linkFault,
  server: serverFault,
};

/** What `weft lab fail` and `heal` act on: host, backend, link, server. */
export const FAULT_KINDS = Object.keys(FAULTS) as readonly FaultKind[];

/** What a kind must be, as an error message ends: `must be one of host, backend, link, server`. */
export const FAULT_KIND_RULE = `must be one of ${FAULT_KINDS.join(', ')}`;

/** Each kind and what it does, for `weft lab fail --help`: `host: the hypervisor goes dark; backend: ...`. */
export const FAULT_HELP = FAULT_KINDS.map((k) => `${k}: ${FAULTS[k].summary}`).join('; ');

export function isFaultKind(v: unknown): v is FaultKind {
  return FAULT_KINDS.includes(v as FaultKind);
}

function kindArg(v: unknown): FaultKind {
  if (!isFaultKind(v)) throw invalid('what', v, FAULT_KIND_RULE);
  return v;
}

/**
 * Injects a fault and measures the reaction (`weft lab fail`; each kind's
 * file says what it does and times). `silent` only for a link. Throws
 * E_INVALID_ARG (unknown kind or target, naming the valid ones),
 * E_CONFLICT (already failed, or inside another fault).
 */
export async function failFault(cloud: Cloud, what: unknown, target: unknown, o: { silent?: unknown } = {}): Promise<FaultReport> {
  const kind = kindArg(what);
  const type = FAULTS[kind];
  if (o.silent !== undefined && o.silent !== false && (o.silent !== true || !type.silent))
    throw invalid('silent', o.silent, 'applies to `fail link` only, true or false');
  return type.fail(cloud, type.target(cloud, target), { silent: o.silent === true });
}

/**
 * Undoes a fault of `fail` and measures the recovery (`weft lab heal`).
 * Throws E_INVALID_ARG (unknown kind or target), E_CONFLICT (not failed).
 */
export async function healFault(cloud: Cloud, what: unknown, target: unknown): Promise<FaultReport> {
  const kind = kindArg(what);
  const type = FAULTS[kind];
  const name = type.target(cloud, target);
  const f = cloud.faults.get(`${kind} ${name}`);
  if (!f) throw conflict(`${kind} ${name} is not failed (failed now: ${list(cloud.faultList())})`, 'target');
  return type.heal(cloud, f);
}
