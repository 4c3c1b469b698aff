// Overview (sites, racks, hosts with state and capacity, instances per host)
// and a host's page (its instances, its agent, drain and undrain).
import { useEffect, useState } from 'preact/hooks';
import { type AgentStatus, api, type Host, type Instance, type Rack, type Site } from '../api.js';
import { live } from '../live.js';
import { Badge, Fields, Guard, link, SearchTable, stateTone, time, Usage, useAction, useLoad } from '../ui.js';

/** The live agents' status, re-rendering with every snapshot. */
export function useAgents(): Map<string, AgentStatus> | null {
  const [, setN] = useState(0);
  useEffect(() => live.subscribe(() => setN((x) => x + 1)), []);
  return live.agents ? new Map(live.agents.map((a) => [a.hostId, a])) : null;
}

/** What is wrong with an agent, in words (empty: nothing). */
export function agentTrouble(a: AgentStatus | undefined): string[] {
  if (!a) return ['agent not connected'];
  const out: string[] = [];
  if (a.guards && a.guards.unguarded > 0) out.push(`${a.guards.unguarded} port(s) unplugged: guard not in place`);
  if (a.vms && a.vms.failing.length > 0) out.push(`${a.vms.failing.length} VM(s) failing`);
  if (a.routing && !a.routing.birdUp) out.push('BIRD down');
  if (a.routing?.lastError) out.push(`routing: ${a.routing.lastError}`);
  if (a.routing?.sessions.some((s) => !s.established)) out.push('a BGP session is not established');
  return out;
}

const infraTouch = (c: { object: { kind: string } }) => ['host', 'instance', 'port'].includes(c.object.kind);

export function OverviewPage() {
  const load = useLoad(
    async () => {
      const [sites, racks, hosts, instances] = await Promise.all([
        api.all<Site>('/v1/sites'),
        api.all<Rack>('/v1/racks'),
        api.all<Host>('/v1/hosts'),
        api.all<Instance>('/v1/instances'),
      ]);
      return { sites, racks, hosts, instances };
    },
    [],
    infraTouch,
  );
  const agents = useAgents();
  return (
    <>
      <h1>Overview</h1>
      <Guard load={load}>
        {({ sites, racks, hosts, instances }) => {
          const perHost = new Map<string, number>();
          for (const i of instances) perHost.set(i.hostId, (perHost.get(i.hostId) ?? 0) + 1);
          const counts = { active: 0, draining: 0, down: 0 } as Record<string, number>;
          for (const h of hosts) counts[h.state] = (counts[h.state] ?? 0) + 1;
          const troubled = hosts.filter((h) => agents && agentTrouble(agents.get(h.id)).length > 0).length;
          return (
            <>
              <ul class="summary" aria-label="Summary">
                <li>
                  <strong>{sites.length}</strong> sites
                </li>
                <li>
                  <strong>{hosts.length}</strong> hosts: {counts.active ?? 0} active, {counts.draining ?? 0} draining, {counts.down ?? 0} down
                </li>
                <li>
                  <strong>{instances.length}</strong> instances
                </li>
                <li class={troubled > 0 ? 'warn' : ''}>
                  <strong>{troubled}</strong> hosts need attention
                </li>
              </ul>
              {sites.map((s) => {
                const siteRacks = racks.filter((r) => r.siteId === s.id);
                const groups: { name: string; hosts: Host[] }[] = siteRacks.map((r) => ({
                  name: `rack ${r.name}`,
                  hosts: hosts.filter((h) => h.rackId === r.id),
                }));
                const loose = hosts.filter((h) => h.siteId === s.id && (h.rackId === null || !siteRacks.some((r) => r.id === h.rackId)));
                if (loose.length > 0) groups.push({ name: 'no rack', hosts: loose });
                return (
                  <section key={s.id} aria-labelledby={`site-${s.id}`}>
                    <h2 id={`site-${s.id}`}>Site {s.name}</h2>
                    {groups.map((g) => (
                      <div key={g.name} class="rack">
                        <h3>{g.name}</h3>
                        <SearchTable
                          caption={`Hosts of site ${s.name}, ${g.name}`}
                          rows={g.hosts}
                          rowKey={(h) => h.id}
                          rowClass={(h) => (agents && agentTrouble(agents.get(h.id)).length > 0 ? 'trouble' : '')}
                          columns={[
                            { label: 'Host', value: (h) => h.name, render: (h) => link(`/hosts/${h.name}`, h.name) },
                            { label: 'State', value: (h) => h.state, render: (h) => <Badge text={h.state} tone={stateTone(h.state)} /> },
                            {
                              label: 'Agent',
                              value: (h) => {
                                const a = agents?.get(h.id);
                                return a ? `lag ${a.lag}` : 'not connected';
                              },
                              render: (h) => {
                                const a = agents?.get(h.id);
                                const t = agentTrouble(a);
                                return a ? (
                                  <span>
                                    lag {a.lag}
                                    {t.length > 0 ? <Badge text={t.join('; ')} tone="bad" /> : null}
                                  </span>
                                ) : (
                                  <Badge text="not connected" tone="neutral" />
                                );
                              },
                            },
                            {
                              label: 'CPUs',
                              value: (h) => `${h.used.cpus}/${h.capacity.cpus}`,
                              render: (h) => <Usage used={h.used.cpus} total={h.capacity.cpus} unit="" label={`${h.name} CPUs`} />,
                            },
                            {
                              label: 'Memory',
                              value: (h) => `${h.used.memoryMb}/${h.capacity.memoryMb}`,
                              render: (h) => (
                                <Usage
                                  used={Math.round(h.used.memoryMb / 1024)}
                                  total={Math.round(h.capacity.memoryMb / 1024)}
                                  unit="GiB"
                                  label={`${h.name} memory`}
                                />
                              ),
                            },
                            {
                              label: 'Disk',
                              value: (h) => `${h.used.diskGb}/${h.capacity.diskGb}`,
                              render: (h) => <Usage used={h.used.diskGb} total={h.capacity.diskGb} unit="GB" label={`${h.name} disk`} />,
                            },
                            { label: 'Instances', value: (h) => String(perHost.get(h.id) ?? 0), numeric: true },
                          ]}
                        />
                      </div>
                    ))}
                  </section>
                );
              })}
            </>
          );
        }}
      </Guard>
    </>
  );
}

export function HostPage({ id }: { id: string }) {
  const load = useLoad(
    async () => {
      const host = await api.get<Host>(`/v1/hosts/${encodeURIComponent(id)}`);
      const instances = await api.all<Instance>(`/v1/instances?host=${encodeURIComponent(host.id)}`);
      return { host, instances };
    },
    [id],
    infraTouch,
  );
  const agents = useAgents();
  const action = useAction();
  const setState = (host: Host, state: 'active' | 'draining') =>
    action
      .run(() => api.patch(`/v1/hosts/${encodeURIComponent(host.id)}`, { state }), state === 'draining' ? `${host.name} is draining` : `${host.name} is active`)
      .then(load.reload);
  return (
    <Guard load={load}>
      {({ host, instances }) => {
        const a = agents?.get(host.id);
        const trouble = agentTrouble(a);
        return (
          <>
            <h1>Host {host.name}</h1>
            <div class="actions">
              {host.state === 'draining' || host.state === 'down' ? (
                <button type="button" disabled={action.busy} onClick={() => setState(host, 'active')}>
                  Undrain (make active)
                </button>
              ) : (
                <button type="button" disabled={action.busy} onClick={() => setState(host, 'draining')}>
                  Drain
                </button>
              )}
              {action.status}
            </div>
            <Fields
              items={[
                ['State', <Badge key="s" text={host.state} tone={stateTone(host.state)} />],
                ['Id', host.id],
                ['Underlay address', host.underlayIp],
                ['IPv6 prefix', host.ipv6Prefix],
                ['ASN', host.asn === null ? null : String(host.asn)],
                ['CPUs', <Usage key="c" used={host.used.cpus} total={host.capacity.cpus} unit="" label="CPUs" />],
                ['Memory', <Usage key="m" used={host.used.memoryMb} total={host.capacity.memoryMb} unit="MiB" label="memory" />],
                ['Disk', <Usage key="d" used={host.used.diskGb} total={host.capacity.diskGb} unit="GB" label="disk" />],
                ['Created', time(host.createdAt)],
              ]}
            />
            <h2>Agent</h2>
            {a ? (
              <>
                <Fields
                  items={[
                    ['Connected since', time(a.connectedAt)],
                    ['Applied version', String(a.appliedVersion)],
                    ['Lag', `${a.lag} change(s) behind the log (version ${live.head})`],
                    ['Problems', trouble.length > 0 ? <Badge key="t" text={trouble.join('; ')} tone="bad" /> : 'none'],
                    ['VMs', a.vms ? `${a.vms.running} running, ${a.vms.stopped} stopped, ${a.vms.noImage} without image` : null],
                  ]}
                />
                {a.guards && a.guards.ports.length > 0 ? (
                  <table>
                    <caption>Ports kept unplugged (guard not in place)</caption>
                    <thead>
                      <tr>
                        <th scope="col">Interface</th>
                        <th scope="col">Kind</th>
                        <th scope="col">Reason</th>
                      </tr>
                    </thead>
                    <tbody>
                      {a.guards.ports.map((p) => (
                        <tr key={p.portId} class="trouble">
                          <td>{link(`/ports/${p.portId}`, p.ifname)}</td>
                          <td>{p.kind}</td>
                          <td>{p.reason}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                ) : null}
              </>
            ) : (
              <p>No agent of this host is connected to this server.</p>
            )}
            <h2>Instances on {host.name}</h2>
            <SearchTable
              caption={`Instances on ${host.name}`}
              rows={instances}
              rowKey={(i) => i.id}
              columns={[
                { label: 'Name', value: (i) => i.name, render: (i) => link(`/instances/${i.id}`, i.name) },
                { label: 'State', value: (i) => i.state },
                { label: 'Addresses', value: (i) => i.ports.flatMap((p) => [p.ipv4 ?? '', p.ipv6 ?? '']).join(' ') },
                { label: 'CPUs', value: (i) => String(i.size.cpus), numeric: true },
              ]}
            />
          </>
        );
      }}
    </Guard>
  );
}
