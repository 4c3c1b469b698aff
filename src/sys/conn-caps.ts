// Caps on a listener's open connections, in total and per source address, so
// one client (or a crowd of them) cannot take every file descriptor. Used by
// the SVP, push-stream and API listeners; its metrics are one gauge and one
// counter shared by every listener of a registry, labelled by listener.
import type { Socket } from 'node:net';
import prom from 'prom-client';
import { invalid } from '../model/errors.js';

export interface ConnectionLimits {
  /** Connections the listener holds open at once. */
  max: number;
  /** Of those, connections from one source address. */
  perSource: number;
}

/** Why a connection was refused: the listener was full, or its source was. */
export type RefuseReason = 'total' | 'per_source';

/** The limits, checked: integers 1..1000000, and perSource at most max. `field` prefixes the names in errors (a flag's stem). */
export function connectionLimits(field: string, l: ConnectionLimits): ConnectionLimits {
  for (const [k, v] of [
    ['max-connections', l.max],
    ['max-connections-per-source', l.perSource],
  ] as const)
    if (!(Number.isInteger(v) && v >= 1 && v <= 1_000_000)) throw invalid(`${field}-${k}`, v, 'must be an integer 1..1000000');
  if (l.perSource > l.max) throw invalid(`${field}-max-connections-per-source`, l.perSource, `must be at most ${field}-max-connections (${l.max})`);
  return l;
}

interface Shared {
  caps: Set<ConnectionCaps>;
  refused: prom.Counter<'listener' | 'reason'>;
}
const shared = new WeakMap<prom.Registry, Shared>();

function metricsOf(registry: prom.Registry): Shared {
  let s = shared.get(registry);
  if (s) return s;
  const caps = new Set<ConnectionCaps>();
  new prom.Gauge({
    name: 'weft_listener_connections',
    help: 'Open connections a listener admitted, by listener (svp, stream, api)',
    labelNames: ['listener'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const c of caps) this.set({ listener: c.listener }, c.open);
    },
  });
  const refused = new prom.Counter({
    name: 'weft_listener_refused_total',
    help: 'Connections a listener refused at its cap, by listener and reason (total, per_source)',
    labelNames: ['listener', 'reason'] as const,
    registers: [registry],
  });
  s = { caps, refused };
  shared.set(registry, s);
  return s;
}

/**
 * Admission of one listener's connections. admit() is called once per
 * accepted socket, before anything is read from it: it counts the socket
 * until its 'close', or refuses it (the caller closes it, in its own
 * protocol's way). Not idempotent: admit a socket once.
 */
export class ConnectionCaps {
  private total = 0;
  private readonly bySource = new Map<string, number>();
  private readonly refused: prom.Counter<'listener' | 'reason'> | null;

  constructor(
    readonly listener: string,
    readonly limits: ConnectionLimits,
    registry?: prom.Registry,
  ) {
    connectionLimits(listener, limits);
    if (registry) {
      const m = metricsOf(registry);
      m.caps.add(this);
      this.refused = m.refused;
    } else this.refused = null;
  }

  /** Connections admitted and not yet closed. */
  get open(): number {
    return this.total;
  }

  /** Null when `sock` is admitted (and counted until it closes), else why it is refused (counted in the metric). */
  admit(sock: Socket): RefuseReason | null {
    // A socket already reset by its peer has no address; it counts under one key.
    const source = sock.remoteAddress ?? 'unknown';
    const n = this.bySource.get(source) ?? 0;
    const reason: RefuseReason | null = this.total >= this.limits.max ? 'total' : n >= this.limits.perSource ? 'per_source' : null;
    if (reason) {
      this.refused?.inc({ listener: this.listener, reason });
      return reason;
    }
    this.total++;
    this.bySource.set(source, n + 1);
    sock.once('close', () => {
      this.total--;
      const left = (this.bySource.get(source) ?? 1) - 1;
      if (left === 0) this.bySource.delete(source);
      else this.bySource.set(source, left);
    });
    return null;
  }
}
