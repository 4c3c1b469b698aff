// What several pages share: names for ids, and the change-log entries that touched an object.
import { api, type Change, type EventChange, type Host, type Network, type Tenant } from '../api.js';
import type { Me } from '../main.js';
import { Guard, link, time, useLoad } from '../ui.js';

export interface Names {
  host: (id: string) => string;
  tenant: (id: string) => string;
  network: (id: string) => string;
  hosts: Host[];
  tenants: Tenant[];
  networks: Network[];
}

/** Names of hosts (operators only), tenants and networks, kept current. */
export function useNames(me: Me) {
  return useLoad<Names>(
    async () => {
      const [hosts, tenants, networks] = await Promise.all([
        me.operator ? api.all<Host>('/v1/hosts') : Promise.resolve([]),
        api.all<Tenant>('/v1/tenants'),
        api.all<Network>('/v1/networks'),
      ]);
      const by = <T extends { id: string; name: string }>(xs: T[]) => {
        const m = new Map(xs.map((x) => [x.id, x.name]));
        return (id: string) => m.get(id) ?? id;
      };
      return { hosts, tenants, networks, host: by(hosts), tenant: by(tenants), network: by(networks) };
    },
    [me.token.id],
    (c) => ['host', 'network'].includes(c.object.kind),
  );
}

/**
 * The change-log entries about these objects: the newest 1000 of the log
 * (GET /v1/changes, operators only) filtered here.
 */
export function ObjectChanges({ me, ids }: { me: Me; ids: string[] }) {
  const key = ids.join(',');
  const load = useLoad(
    async () => {
      if (!me.operator) return null;
      const page = await api.get<{ items: Change[] }>('/v1/changes?order=desc&limit=1000');
      const want = new Set(ids);
      return page.items.filter((c) => want.has(c.object.id));
    },
    [key],
    (c: EventChange) => ids.includes(c.object.id),
  );
  return (
    <section aria-labelledby="changes-h">
      <h2 id="changes-h">Changes</h2>
      {me.operator ? (
        <Guard load={load}>
          {(items) => (items && items.length > 0 ? <ChangeTable items={items} /> : <p>No entry about it among the newest 1000 of the change log.</p>)}
        </Guard>
      ) : (
        <p>The change log is read by operators (admin and readonly tokens).</p>
      )}
    </section>
  );
}

const objectLink = (o: { kind: string; id: string; name: string | null }) => {
  const path = { host: 'hosts', instance: 'instances', port: 'ports', network: 'networks' }[o.kind];
  const text = `${o.kind} ${o.name ?? o.id}`;
  return path && !o.kind.endsWith('deleted') ? link(`/${path}/${o.id}`, text) : text;
};

export function ChangeTable({ items }: { items: (Change | EventChange)[] }) {
  return (
    <table class="changes">
      <caption class="visually-hidden">Change-log entries, newest first</caption>
      <thead>
        <tr>
          <th scope="col" class="num">
            Version
          </th>
          <th scope="col">Time</th>
          <th scope="col">Change</th>
          <th scope="col">Object</th>
          <th scope="col">Actor</th>
        </tr>
      </thead>
      <tbody>
        {items.map((c) => (
          <tr key={c.version}>
            <td class="num">{c.version}</td>
            <td>{time(c.at)}</td>
            <td>{c.kind}</td>
            <td>{objectLink(c.object)}</td>
            <td>{c.actor ? c.actor.name : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
