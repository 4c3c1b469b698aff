// What every weft process exports on /metrics besides its own series: the
// standard process_* and nodejs_* metrics and weft_build_info.
import client from 'prom-client';
import { weftVersion } from './install.js';

/**
 * Registers Node's default metrics (unprefixed, as every Node exporter
 * names them) and a weft_build_info{version,node} gauge of 1 on `registry`.
 * Once per registry: a second call throws prom-client's duplicate-name error.
 */
export function registerProcessMetrics(registry: client.Registry): void {
  client.collectDefaultMetrics({ register: registry });
  // prom-client exports these three sums as gauges named *_total, which
  // Prometheus reserves for counters (promtool refuses them); the per-type
  // gauges beside them (nodejs_active_handles{type}...) sum to the same.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  new client.Gauge({
    name: 'weft_build_info',
    help: 'Always 1: the weft version and the Node.js version this process runs',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  }).set({ version: weftVersion(), node: process.versions.node }, 1);
}
