// `npm run bench [name...]`: runs the benchmarks (all by default), each
// printing a table and one JSON line per result. Sizes come from BENCH_*
// environment variables so a quick run is possible on a busy machine.
import { agentSync } from './agent-sync.js';
import { apiCreate } from './api-create.js';
import { convergence } from './convergence.js';
import { framing } from './framing.js';
import { lab } from './lab.js';
import { overlayThroughput } from './overlay-throughput.js';
import { report } from './report.js';
import { routing } from './routing.js';
import { startup } from './startup.js';
import { svpLookup } from './svp-lookup.js';

const benches: Record<string, { title: string; run: () => Promise<Parameters<typeof report>[1]> }> = {
  'agent-sync': { title: "agent-sync: a real agent's full sync of 100k remote ports into a namespace, next to raw iproute2 batches", run: agentSync },
  'api-create': { title: 'api-create: instance creations through the API (1 port each), concurrent clients, real server process', run: apiCreate },
  convergence: { title: 'convergence: API move -> every agent concerned applied it, simulated agents on the real stream', run: convergence },
  framing: {
    title: 'framing: SVP and push-stream frames fed a byte at a time and whole, preallocated (now) next to re-concatenated (before)',
    run: framing,
  },
  lab: { title: 'lab: weft lab up, and API change -> FDB entry in every remote host kernel (bridge monitor fdb)', run: lab },
  'overlay-throughput': {
    title: 'overlay-throughput: iperf3 between VMs on two racks over VXLAN with every guard on, next to the underlay',
    run: overlayThroughput,
  },
  routing: { title: 'routing: VIP withdrawal after a failed health check, and BFD detection, at the ToR (real BIRD, lab)', run: routing },
  startup: {
    title: 'startup: weft --version, weft host list and a server start to /healthz, through tsx and compiled (what bin/weft runs), interleaved',
    run: startup,
  },
  'svp-lookup': { title: 'svp-lookup: SVP VL2/VL3 lookups against a real server process holding 1M mappings', run: svpLookup },
};

const wanted = process.argv.slice(2);
for (const w of wanted) if (!benches[w]) throw new Error(`unknown benchmark ${w}; there are: ${Object.keys(benches).join(', ')}`);
for (const [name, b] of Object.entries(benches)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  report(b.title, await b.run());
}
