// Tenants, networks, instances and ports: searchable lists and detail pages
// with addresses, MACs, host and the change-log entries that touched them;
// create, delete and migrate an instance.
import { useState } from 'preact/hooks';
import { api, type Instance, type Network, type Port, type Site, type TenantWithUsage } from '../api.js';
import type { Me } from '../main.js';
import { Badge, Fields, Guard, link, SearchTable, stateTone, time, useAction, useLoad } from '../ui.js';
import { ObjectChanges, useNames } from './common.js';

const touch = (kinds: string[]) => (c: { object: { kind: string } }) => kinds.includes(c.object.kind);
const addrs = (ports: Port[]) => ports.flatMap((p) => [p.ipv4, p.ipv6].filter((a): a is string => a !== null));

export function TenantsPage() {
  const load = useLoad(() => api.all<TenantWithUsage>('/v1/tenants'), []);
  return (
    <>
      <h1>Tenants</h1>
      <Guard load={load}>
        {(rows) => (
          <SearchTable
            caption="Tenants"
            rows={rows}
            rowKey={(t) => t.id}
            columns={[
              { label: 'Name', value: (t) => t.name, render: (t) => link(`/tenants/${t.id}`, t.name) },
              { label: 'Id', value: (t) => t.id },
              { label: 'Created', value: (t) => time(t.createdAt) },
            ]}
          />
        )}
      </Guard>
    </>
  );
}

export function TenantPage({ id, me }: { id: string; me: Me }) {
  const load = useLoad(async () => {
    const t = await api.get<TenantWithUsage>(`/v1/tenants/${encodeURIComponent(id)}`);
    const [networks, instances] = await Promise.all([api.all<Network>(`/v1/networks?tenant=${t.id}`), api.all<Instance>(`/v1/instances?tenant=${t.id}`)]);
    return { t, networks, instances };
  }, [id]);
  return (
    <Guard load={load}>
      {({ t, networks, instances }) => (
        <>
          <h1>Tenant {t.name}</h1>
          <Fields
            items={[
              ['Id', t.id],
              ...(['instances', 'networks', 'ports', 'publicIpv4', 'vips'] as const).map((k): [string, string] => [
                `${k} (used / limit)`,
                `${t.usage[k]} / ${t.limits[k]}`,
              ]),
            ]}
          />
          <h2>Networks</h2>
          <ul>
            {networks.map((n) => (
              <li key={n.id}>
                {link(`/networks/${n.id}`, n.name)} {n.subnets.join(', ')}
              </li>
            ))}
          </ul>
          <h2>Instances</h2>
          <ul>
            {instances.map((i) => (
              <li key={i.id}>
                {link(`/instances/${i.id}`, i.name)} {addrs(i.ports).join(', ')}
              </li>
            ))}
          </ul>
          <ObjectChanges me={me} ids={[...networks.map((n) => n.id), ...instances.flatMap((i) => [i.id, ...i.ports.map((p) => p.id)])]} />
        </>
      )}
    </Guard>
  );
}

export function NetworksPage() {
  const load = useLoad(async () => {
    const [rows, tenants] = await Promise.all([api.all<Network>('/v1/networks'), api.all<TenantWithUsage>('/v1/tenants')]);
    return { rows, tenant: new Map(tenants.map((t) => [t.id, t.name])) };
  }, []);
  return (
    <>
      <h1>Networks</h1>
      <Guard load={load}>
        {({ rows, tenant }) => (
          <SearchTable
            caption="Networks"
            rows={rows}
            rowKey={(n) => n.id}
            columns={[
              { label: 'Name', value: (n) => n.name, render: (n) => link(`/networks/${n.id}`, n.name) },
              { label: 'Tenant', value: (n) => tenant.get(n.tenantId) ?? n.tenantId },
              { label: 'Kind', value: (n) => n.kind },
              { label: 'VNI', value: (n) => String(n.vni ?? '—'), numeric: true },
              { label: 'Subnets', value: (n) => n.subnets.join(' ') },
              { label: 'MTU', value: (n) => String(n.mtu), numeric: true },
            ]}
          />
        )}
      </Guard>
    </>
  );
}

export function NetworkPage({ id, me }: { id: string; me: Me }) {
  const load = useLoad(
    async () => {
      const n = await api.get<Network>(`/v1/networks/${encodeURIComponent(id)}`);
      return { n, ports: await api.all<Port>(`/v1/ports?network=${n.id}`) };
    },
    [id],
    touch(['network', 'port']),
  );
  return (
    <Guard load={load}>
      {({ n, ports }) => (
        <>
          <h1>Network {n.name}</h1>
          <Fields
            items={[
              ['Id', n.id],
              ['Kind', n.kind],
              ['VNI', n.vni === null ? null : String(n.vni)],
              ['Subnets', n.subnets.join(', ')],
              ['MTU', String(n.mtu)],
              ['ARP / ND rate', `${n.arpRate ?? 'default'} / ${n.ndRate ?? 'default'}`],
              ['Created', time(n.createdAt)],
            ]}
          />
          <h2>Ports</h2>
          <PortTable ports={ports} />
          <ObjectChanges me={me} ids={[n.id, ...ports.map((p) => p.id)]} />
        </>
      )}
    </Guard>
  );
}

function PortTable({ ports }: { ports: Port[] }) {
  return (
    <SearchTable
      caption="Ports"
      rows={ports}
      rowKey={(p) => p.id}
      columns={[
        { label: 'MAC', value: (p) => p.mac, render: (p) => link(`/ports/${p.id}`, p.mac) },
        { label: 'IPv4', value: (p) => p.ipv4 ?? '—' },
        { label: 'IPv6', value: (p) => p.ipv6 ?? '—' },
        { label: 'Interface', value: (p) => p.interface },
        { label: 'Instance', value: (p) => p.instanceId, render: (p) => link(`/instances/${p.instanceId}`, p.instanceId) },
      ]}
    />
  );
}

export function PortsPage() {
  const load = useLoad(() => api.all<Port>('/v1/ports'), [], touch(['port']));
  return (
    <>
      <h1>Ports</h1>
      <Guard load={load}>{(ports) => <PortTable ports={ports} />}</Guard>
    </>
  );
}

export function PortPage({ id, me }: { id: string; me: Me }) {
  const load = useLoad(() => api.get<Port>(`/v1/ports/${encodeURIComponent(id)}`), [id], touch(['port']));
  return (
    <Guard load={load}>
      {(p) => (
        <>
          <h1>Port {p.mac}</h1>
          <Fields
            items={[
              ['Id', p.id],
              ['MAC', p.mac],
              ['IPv4', p.ipv4],
              ['IPv6', p.ipv6],
              ['Interface', p.interface],
              ['Instance', link(`/instances/${p.instanceId}`, p.instanceId)],
              ['Network', link(`/networks/${p.networkId}`, p.networkId)],
              ['Created', time(p.createdAt)],
            ]}
          />
          <ObjectChanges me={me} ids={[p.id]} />
        </>
      )}
    </Guard>
  );
}

function CreateInstance({ me, onCreated }: { me: Me; onCreated: () => void }) {
  const names = useNames(me);
  const sites = useLoad(() => api.all<Site>('/v1/sites'), []);
  const action = useAction();
  const [f, setF] = useState({ name: '', tenant: '', site: '', size: 'small', network: '' });
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement | HTMLSelectElement).value });
  const tenants = names.data?.tenants ?? [];
  const tenant = f.tenant || (tenants.length === 1 ? (tenants[0]?.id ?? '') : '');
  const networks = (names.data?.networks ?? []).filter((n) => n.tenantId === tenant);
  const site = f.site || (sites.data?.[0]?.id ?? '');
  const submit = async (e: Event) => {
    e.preventDefault();
    const body = {
      name: f.name.trim(),
      ...(tenant ? { tenant } : {}),
      site,
      size: f.size,
      ...(f.network ? { ports: [{ network: f.network }] } : {}),
    };
    if (await action.run(() => api.post('/v1/instances', body), `instance ${body.name} created`)) {
      setF({ ...f, name: '' });
      onCreated();
    }
  };
  return (
    <details class="create">
      <summary>Create an instance</summary>
      <form onSubmit={submit}>
        <label for="ci-name">Name</label>
        <input id="ci-name" required value={f.name} onInput={set('name')} />
        <label for="ci-tenant">Tenant</label>
        <select id="ci-tenant" value={tenant} onChange={set('tenant')} required>
          <option value="">choose…</option>
          {tenants.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>
        <label for="ci-site">Site</label>
        <select id="ci-site" value={site} onChange={set('site')}>
          {(sites.data ?? []).map((s) => (
            <option key={s.id} value={s.id}>
              {s.name}
            </option>
          ))}
        </select>
        <label for="ci-size">Size</label>
        <select id="ci-size" value={f.size} onChange={set('size')}>
          {['nano', 'small', 'medium', 'large', 'xlarge'].map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <label for="ci-network">Network (a port on it)</label>
        <select id="ci-network" value={f.network} onChange={set('network')}>
          <option value="">none</option>
          {networks.map((n) => (
            <option key={n.id} value={n.id}>
              {n.name}
            </option>
          ))}
        </select>
        <button type="submit" disabled={action.busy}>
          Create
        </button>
      </form>
      {action.status}
    </details>
  );
}

export function InstancesPage({ me }: { me: Me }) {
  const names = useNames(me);
  const load = useLoad(() => api.all<Instance>('/v1/instances'), [], touch(['instance', 'port']));
  return (
    <>
      <h1>Instances</h1>
      {me.token.role !== 'readonly' ? <CreateInstance me={me} onCreated={load.reload} /> : null}
      <Guard load={load}>
        {(rows) => (
          <SearchTable
            caption="Instances"
            rows={rows}
            rowKey={(i) => i.id}
            columns={[
              { label: 'Name', value: (i) => i.name, render: (i) => link(`/instances/${i.id}`, i.name) },
              { label: 'Tenant', value: (i) => names.data?.tenant(i.tenantId) ?? i.tenantId },
              ...(me.operator ? [{ label: 'Host', value: (i: Instance) => names.data?.host(i.hostId) ?? i.hostId }] : []),
              { label: 'State', value: (i) => i.state, render: (i) => <Badge text={i.state} tone={stateTone(i.state)} /> },
              { label: 'Addresses', value: (i) => addrs(i.ports).join(' ') },
              { label: 'MACs', value: (i) => i.ports.map((p) => p.mac).join(' ') },
            ]}
          />
        )}
      </Guard>
    </>
  );
}

export function InstancePage({ id, me }: { id: string; me: Me }) {
  const names = useNames(me);
  const load = useLoad(() => api.get<Instance>(`/v1/instances/${encodeURIComponent(id)}`), [id], touch(['instance', 'port']));
  const action = useAction();
  const [target, setTarget] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [deleted, setDeleted] = useState(false);
  if (deleted)
    return (
      <>
        <h1>Instance deleted</h1>
        <p role="status">The instance was deleted. {link('/instances', 'Back to instances')}</p>
      </>
    );
  return (
    <Guard load={load}>
      {(i) => (
        <>
          <h1>Instance {i.name}</h1>
          <div class="actions">
            {me.token.role === 'admin' ? (
              <form
                class="inline"
                onSubmit={(e) => {
                  e.preventDefault();
                  void action
                    .run(
                      () => api.post<Instance>(`/v1/instances/${i.id}/migrate`, target ? { target } : {}),
                      `migration of ${i.name} started${target ? ` to ${names.data?.host(target) ?? target}` : ''}`,
                    )
                    .then(load.reload);
                }}
              >
                <label for="mig-target">Migrate to</label>
                <select id="mig-target" value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
                  <option value="">the host placement picks</option>
                  {(names.data?.hosts ?? [])
                    .filter((h) => h.id !== i.hostId)
                    .map((h) => (
                      <option key={h.id} value={h.id}>
                        {h.name} ({h.state})
                      </option>
                    ))}
                </select>
                <button type="submit" disabled={action.busy}>
                  Migrate
                </button>
              </form>
            ) : null}
            {me.token.role !== 'readonly' ? (
              confirming ? (
                <>
                  <button
                    type="button"
                    class="danger"
                    disabled={action.busy}
                    onClick={() =>
                      void action
                        .run(() => api.del(`/v1/instances/${i.id}`), `${i.name} deleted`)
                        .then((ok) => {
                          setConfirming(false);
                          if (ok) setDeleted(true);
                        })
                    }
                  >
                    Really delete {i.name}
                  </button>
                  <button type="button" class="secondary" onClick={() => setConfirming(false)}>
                    Keep it
                  </button>
                </>
              ) : (
                <button type="button" class="danger" onClick={() => setConfirming(true)}>
                  Delete…
                </button>
              )
            ) : null}
            {action.status}
          </div>
          <Fields
            items={[
              ['Id', i.id],
              ['State', <Badge key="s" text={i.state} tone={stateTone(i.state)} />],
              ['Tenant', link(`/tenants/${i.tenantId}`, names.data?.tenant(i.tenantId) ?? i.tenantId)],
              ['Host', me.operator ? link(`/hosts/${i.hostId}`, names.data?.host(i.hostId) ?? i.hostId) : i.hostId],
              ['Size', `${i.size.cpus} CPU, ${i.size.memoryMb} MiB, ${i.size.diskGb} GB`],
              ['Image', i.image],
              ['Created', time(i.createdAt)],
            ]}
          />
          <h2>Ports</h2>
          <table>
            <caption class="visually-hidden">Ports of {i.name}</caption>
            <thead>
              <tr>
                <th scope="col">MAC</th>
                <th scope="col">Network</th>
                <th scope="col">IPv4</th>
                <th scope="col">IPv6</th>
                <th scope="col">Interface</th>
              </tr>
            </thead>
            <tbody>
              {i.ports.map((p) => (
                <tr key={p.id}>
                  <td>{link(`/ports/${p.id}`, p.mac)}</td>
                  <td>{link(`/networks/${p.networkId}`, names.data?.network(p.networkId) ?? p.networkId)}</td>
                  <td>{p.ipv4 ?? '—'}</td>
                  <td>{p.ipv6 ?? '—'}</td>
                  <td>{p.interface}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <ObjectChanges me={me} ids={[i.id, ...i.ports.map((p) => p.id)]} />
        </>
      )}
    </Guard>
  );
}
