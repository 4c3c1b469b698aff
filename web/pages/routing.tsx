// Routing: each host's BGP sessions (state, routes received, accepted and
// exported) and what it announces; each VIP with its backends and the hosts
// announcing it.
import { api, type Host, type Instance, type Vip } from '../api.js';
import type { Me } from '../main.js';
import { Badge, Guard, link, time, useLoad } from '../ui.js';
import { useAgents } from './infra.js';

export function RoutingPage({ me }: { me: Me }) {
  const load = useLoad(
    async () => {
      const [hosts, vips, instances] = await Promise.all([api.all<Host>('/v1/hosts'), api.all<Vip>('/v1/vips'), api.all<Instance>('/v1/instances')]);
      return { hosts, vips, instances };
    },
    [me.token.id],
    (c) => ['host', 'vip', 'instance', 'peer'].includes(c.object.kind),
  );
  const agents = useAgents();
  return (
    <>
      <h1>Routing</h1>
      <Guard load={load}>
        {({ hosts, vips, instances }) => {
          const hostName = new Map(hosts.map((h) => [h.id, h.name]));
          // A VIP's backends are ports: each with its instance and that instance's host.
          const portOwner = new Map(instances.flatMap((i) => i.ports.map((p) => [p.id, { i, p }] as const)));
          const announcing = (address: string) =>
            hosts.filter((h) => agents?.get(h.id)?.routing?.announced.some((p) => p.split('/')[0] === address)).map((h) => h.name);
          return (
            <>
              <section aria-labelledby="vips-h">
                <h2 id="vips-h">VIPs</h2>
                {vips.length === 0 ? <p>No VIPs.</p> : null}
                {vips.map((v) => {
                  const where = announcing(v.address);
                  return (
                    <div key={v.id} class="vip">
                      <h3>
                        {v.name} <code>{v.address}</code>{' '}
                        {where.length > 0 ? <Badge text={`announced by ${where.join(', ')}`} tone="good" /> : <Badge text="announced nowhere" tone="bad" />}
                      </h3>
                      <table>
                        <caption class="visually-hidden">Backends of {v.name}</caption>
                        <thead>
                          <tr>
                            <th scope="col">Backend</th>
                            <th scope="col">Host</th>
                            <th scope="col">Health (its host announces the VIP)</th>
                          </tr>
                        </thead>
                        <tbody>
                          {v.backends.map((b) => {
                            const owner = portOwner.get(b);
                            const host = owner ? (hostName.get(owner.i.hostId) ?? owner.i.hostId) : null;
                            const up = host !== null && where.includes(host);
                            return (
                              <tr key={b} class={up ? '' : 'trouble'}>
                                <td>{owner ? link(`/instances/${owner.i.id}`, `${owner.i.name} (${owner.p.ipv4 ?? owner.p.ipv6 ?? owner.p.mac})`) : b}</td>
                                <td>{host ?? '—'}</td>
                                <td>{up ? <Badge text="healthy" tone="good" /> : <Badge text="not announced: unhealthy or agent away" tone="bad" />}</td>
                              </tr>
                            );
                          })}
                        </tbody>
                      </table>
                    </div>
                  );
                })}
              </section>
              <section aria-labelledby="bgp-h">
                <h2 id="bgp-h">BGP sessions per host</h2>
                {hosts.map((h) => {
                  const r = agents?.get(h.id)?.routing;
                  return (
                    <div key={h.id} class="bgp-host">
                      <h3>
                        {link(`/hosts/${h.name}`, h.name)}{' '}
                        {!r ? (
                          <Badge text="no routing report" tone="neutral" />
                        ) : r.birdUp ? (
                          <Badge text="BIRD up" tone="good" />
                        ) : (
                          <Badge text="BIRD down" tone="bad" />
                        )}
                        {r?.lastError ? <Badge text={r.lastError} tone="bad" /> : null}
                      </h3>
                      {r && r.sessions.length > 0 ? (
                        <table>
                          <caption class="visually-hidden">BGP sessions of {h.name}</caption>
                          <thead>
                            <tr>
                              <th scope="col">Neighbor</th>
                              <th scope="col">State</th>
                              <th scope="col">Since</th>
                              <th scope="col" class="num">
                                Received
                              </th>
                              <th scope="col" class="num">
                                Accepted
                              </th>
                              <th scope="col" class="num">
                                Exported
                              </th>
                              <th scope="col">Last error</th>
                            </tr>
                          </thead>
                          <tbody>
                            {r.sessions.map((s) => (
                              <tr key={`${s.neighbor}-${s.peerId}`} class={s.established ? '' : 'trouble'}>
                                <td>{s.neighbor ?? '—'}</td>
                                <td>
                                  <Badge text={s.state} tone={s.established ? 'good' : 'bad'} />
                                </td>
                                <td>{time(s.since)}</td>
                                <td class="num">{s.received}</td>
                                <td class="num">{s.accepted}</td>
                                <td class="num">{s.exported}</td>
                                <td>{s.lastError ?? '—'}</td>
                              </tr>
                            ))}
                          </tbody>
                        </table>
                      ) : r ? (
                        <p>No sessions.</p>
                      ) : null}
                      {r && r.announced.length > 0 ? <p class="announced">Announces: {r.announced.join(', ')}</p> : null}
                    </div>
                  );
                })}
              </section>
            </>
          );
        }}
      </Guard>
    </>
  );
}
