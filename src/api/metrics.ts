// Prometheus metrics of the server: HTTP traffic, and gauges read from the
// store at scrape time (entities, allocations, change-log head).
import client from 'prom-client';
import type { Ctx } from '../core/context.js';
import { stats } from '../core/queries.js';
import { registerProcessMetrics } from '../sys/metrics.js';

export interface ApiMetrics {
  registry: client.Registry;
  requests: client.Counter<'method' | 'route' | 'status'>;
  latency: client.Histogram<'method' | 'route'>;
}

export function createMetrics(ctx: Ctx, registry: client.Registry = new client.Registry()): ApiMetrics {
  registerProcessMetrics(registry);
  const requests = new client.Counter({
    name: 'weft_api_requests_total',
    help: 'API requests by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: 'weft_api_request_seconds',
    help: 'API request latency by method and route template',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // One scrape reads the store once; the three gauges share the result.
  let pending: Promise<Awaited<ReturnType<typeof stats>>> | null = null;
  const snapshot = () => {
    pending ??= stats(ctx).finally(() => setTimeout(() => (pending = null), 0));
    return pending;
  };
  new client.Gauge({
    name: 'weft_entities',
    help: 'Objects in the source of truth, by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
    async collect() {
      const s = await snapshot();
      for (const [kind, n] of Object.entries(s.entities)) this.set({ kind }, n);
    },
  });
  new client.Gauge({
    name: 'weft_allocations',
    help: 'Allocated numbers (addresses, MACs, VNIs, /64s), by pool type',
    labelNames: ['pool'] as const,
    registers: [registry],
    async collect() {
      const s = await snapshot();
      const byType = new Map<string, number>();
      // Pools are per network or site (net:<id>:4); sum them by type to keep labels few.
      for (const a of s.allocations) {
        const parts = a.pool.split(':');
        const type = parts.length === 3 ? `${parts[0]}:${parts[2]}` : (parts[0] as string) + (parts[1] ? `:${parts[1]}` : '');
        byType.set(type, (byType.get(type) ?? 0) + a.n);
      }
      this.reset();
      for (const [pool, n] of byType) this.set({ pool }, n);
    },
  });
  new client.Gauge({
    name: 'weft_changelog_version',
    help: 'Newest committed change-log version',
    registers: [registry],
    async collect() {
      this.set((await snapshot()).version);
    },
  });
  return { registry, requests, latency };
}
