// Every host's agent: applied version and lag, live from the event stream,
// a chart of the lag over the last minutes (uPlot), failures highlighted.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { api, type Host } from '../api.js';
import { HISTORY_SECONDS, type LagSample, live } from '../live.js';
import { Badge, Guard, link, SearchTable, time, useLoad } from '../ui.js';
import { agentTrouble, useAgents } from './infra.js';

const COLOURS = ['#0b5cad', '#b3261e', '#1b7a3d', '#8a4baf', '#a15c00', '#006d77', '#5c5c5c', '#c2185b'];

/** uPlot's columns from the samples: time, then one series per host. */
function columns(history: LagSample[], hosts: Host[]): uPlot.AlignedData {
  return [history.map((s) => s.t), ...hosts.map((h) => history.map((s) => s.lag[h.id] ?? null))] as uPlot.AlignedData;
}

function LagChart({ hosts }: { hosts: Host[] }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = hosts.map((h) => h.id).join(',');
  useEffect(() => {
    if (!el.current) return;
    const width = () => Math.max(320, (el.current?.clientWidth ?? 800) - 8);
    const p = new uPlot(
      {
        width: width(),
        height: 220,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, max)] } },
        axes: [
          {
            stroke: '#222',
            space: 90,
            // Whole seconds and up: the samples are a second apart.
            incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600],
            values: (_u, splits) => splits.map((t) => new Date(t * 1000).toLocaleTimeString(undefined, { hour12: false })),
          },
          { stroke: '#222', label: 'lag (changes)' },
        ],
        // Every other line dashed: hosts with the same lag draw on top of each other, and both colours still show.
        series: [
          {},
          ...hosts.map((h, i) => ({
            label: h.name,
            stroke: COLOURS[i % COLOURS.length],
            width: 2,
            spanGaps: false,
            ...(i % 2 === 1 ? { dash: [6, 6] } : {}),
          })),
        ],
      },
      columns(live.history, hosts),
      el.current,
    );
    plot.current = p;
    const off = live.subscribe(() => p.setData(columns(live.history, hosts)));
    const resize = () => p.setSize({ width: width(), height: 220 });
    window.addEventListener('resize', resize);
    return () => {
      off();
      window.removeEventListener('resize', resize);
      p.destroy();
    };
  }, [key]);
  // The window's peak, in words for screen readers (and the browser test).
  const peak = Math.max(0, ...live.history.flatMap((s) => Object.values(s.lag)));
  return (
    <figure class="chart" data-peak={peak}>
      <div
        ref={el}
        role="img"
        aria-label={`Convergence lag of each host's agent, in change-log versions behind, over the last ${HISTORY_SECONDS / 60} minutes`}
      />
      <figcaption>
        <p class="visually-hidden">Highest lag in this window: {peak}.</p>
        <ul class="legend">
          {hosts.map((h, i) => (
            <li key={h.id}>
              <span class="swatch" data-colour={i % COLOURS.length} aria-hidden="true" />
              {h.name}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}

export function AgentsPage() {
  const load = useLoad(
    () => api.all<Host>('/v1/hosts'),
    [],
    (c) => c.object.kind === 'host',
  );
  const agents = useAgents();
  return (
    <>
      <h1>Agents</h1>
      <Guard load={load}>
        {(hosts) => {
          const rows = hosts.map((h) => ({ h, a: agents?.get(h.id) }));
          const maxLag = Math.max(0, ...rows.map((r) => r.a?.lag ?? 0));
          return (
            <>
              <p role="status" class="lag-now">
                Log head: version {live.head}. Largest lag now: <strong data-testid="max-lag">{maxLag}</strong>. {rows.filter((r) => r.a).length} of{' '}
                {hosts.length} agents connected.
              </p>
              <LagChart hosts={hosts} />
              <SearchTable
                caption="Agents"
                rows={rows}
                rowKey={(r) => r.h.id}
                rowClass={(r) => (agentTrouble(r.a).length > 0 ? 'trouble' : '')}
                columns={[
                  { label: 'Host', value: (r) => r.h.name, render: (r) => link(`/hosts/${r.h.name}`, r.h.name) },
                  { label: 'Connected since', value: (r) => (r.a ? time(r.a.connectedAt) : 'not connected') },
                  { label: 'Applied', value: (r) => String(r.a?.appliedVersion ?? '—'), numeric: true },
                  { label: 'Sent', value: (r) => String(r.a?.sentVersion ?? '—'), numeric: true },
                  { label: 'Lag', value: (r) => String(r.a?.lag ?? '—'), numeric: true },
                  { label: 'Guards', value: (r) => (r.a?.guards ? `${r.a.guards.unguarded} unguarded` : '—') },
                  { label: 'VMs', value: (r) => (r.a?.vms ? `${r.a.vms.running} running, ${r.a.vms.failing.length} failing` : '—') },
                  {
                    label: 'Problems',
                    value: (r) => agentTrouble(r.a).join('; '),
                    render: (r) => {
                      const t = agentTrouble(r.a);
                      return t.length > 0 ? <Badge text={t.join('; ')} tone={r.a ? 'bad' : 'neutral'} /> : <Badge text="ok" tone="good" />;
                    },
                  },
                ]}
              />
            </>
          );
        }}
      </Guard>
    </>
  );
}
