// The Weft web console: login with a token, then pages over the REST API
// and the event stream (docs/web.md). Hash routes (#/hosts/hv1), so the
// server serves one index.html and nothing else needs rewriting.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, session, type Token, whenLoggedOut } from './api.js';
import { live } from './live.js';
import { AgentsPage } from './pages/agents.js';
import { ChangesPage } from './pages/changes.js';
import { HostPage, OverviewPage } from './pages/infra.js';
import { RoutingPage } from './pages/routing.js';
import { InstancePage, InstancesPage, NetworkPage, NetworksPage, PortPage, PortsPage, TenantPage, TenantsPage } from './pages/tenancy.js';
import { ErrorText } from './ui.js';

export interface Me {
  token: Token;
  operator: boolean;
}

function useHash(): string[] {
  const get = () => decodeURIComponent(location.hash.replace(/^#\/?/, '')).split('/').filter(Boolean);
  const [parts, setParts] = useState(get);
  useEffect(() => {
    const on = () => setParts(get());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return parts;
}

function Login({ onLogin }: { onLogin: (t: Token) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await api.whoami(token.trim());
      if (me.role === 'agent') throw new Error('an agent token cannot use the console: log in with an admin, readonly or tenant token');
      session.set(token.trim());
      onLogin(me);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="login">
      <h1>Weft console</h1>
      <form onSubmit={submit}>
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
        <p class="hint">An admin or readonly token sees the whole cloud; a tenant token sees its tenant only. The token stays in this tab (sessionStorage).</p>
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <ErrorText error={error} />
      </form>
    </main>
  );
}

const NAV: { path: string; label: string; operator?: boolean }[] = [
  { path: '', label: 'Overview', operator: true },
  { path: 'agents', label: 'Agents', operator: true },
  { path: 'routing', label: 'Routing', operator: true },
  { path: 'tenants', label: 'Tenants' },
  { path: 'networks', label: 'Networks' },
  { path: 'instances', label: 'Instances' },
  { path: 'ports', label: 'Ports' },
  { path: 'changes', label: 'Change log' },
];

function Connection() {
  const [, setN] = useState(0);
  useEffect(() => live.subscribe(() => setN((x) => x + 1)), []);
  return (
    // Not a live region: the version moves with every change, which a screen reader would read out each time.
    <span class={`conn ${live.connected ? 'up' : 'down'}`} title={live.why ?? ''}>
      {live.connected ? `live · version ${live.head}` : `reconnecting${live.why ? `: ${live.why}` : ''}`}
    </span>
  );
}

function Page({ me, parts }: { me: Me; parts: string[] }) {
  const [section = me.operator ? '' : 'instances', id] = parts;
  switch (section) {
    case '':
      return <OverviewPage />;
    case 'hosts':
      return id ? <HostPage id={id} /> : <OverviewPage />;
    case 'agents':
      return <AgentsPage />;
    case 'routing':
      return <RoutingPage me={me} />;
    case 'tenants':
      return id ? <TenantPage id={id} me={me} /> : <TenantsPage />;
    case 'networks':
      return id ? <NetworkPage id={id} me={me} /> : <NetworksPage />;
    case 'instances':
      return id ? <InstancePage id={id} me={me} /> : <InstancesPage me={me} />;
    case 'ports':
      return id ? <PortPage id={id} me={me} /> : <PortsPage />;
    case 'changes':
      return <ChangesPage me={me} />;
    default:
      return (
        <>
          <h1>Not found</h1>
          <p>No page {location.hash}.</p>
        </>
      );
  }
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(session.token !== null);
  const parts = useHash();
  const login = (t: Token) => {
    setMe({ token: t, operator: t.role === 'admin' || t.role === 'readonly' });
    live.start();
  };
  const logout = () => {
    session.clear();
    live.stop();
    setMe(null);
  };
  useEffect(() => whenLoggedOut(logout), []);
  useEffect(() => {
    const t = session.token;
    if (!t) return;
    api
      .whoami(t)
      .then(login, () => session.clear())
      .finally(() => setChecking(false));
  }, []);
  if (checking) return <p aria-busy="true">Loading…</p>;
  if (!me) return <Login onLogin={login} />;
  const section = parts[0] ?? (me.operator ? '' : 'instances');
  return (
    <>
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header>
        <span class="brand">Weft</span>
        <nav aria-label="Pages">
          <ul>
            {NAV.filter((n) => me.operator || !n.operator).map((n) => (
              <li key={n.path}>
                <a href={`#/${n.path}`} aria-current={section === n.path || (n.path === '' && section === 'hosts') ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <Connection />
        <span class="who">
          {me.token.name} ({me.token.role})
        </span>
        <button type="button" class="secondary" onClick={logout}>
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page me={me} parts={parts} />
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
