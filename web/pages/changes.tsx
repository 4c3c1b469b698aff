// The change log, live: the newest entries (GET /v1/changes for operators)
// and every new one as the event stream brings it, with its actor.
import { useEffect, useState } from 'preact/hooks';
import { api, type Change, type EventChange } from '../api.js';
import { live } from '../live.js';
import type { Me } from '../main.js';
import { ErrorText } from '../ui.js';
import { ChangeTable } from './common.js';

export function ChangesPage({ me }: { me: Me }) {
  const [older, setOlder] = useState<Change[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [, setN] = useState(0);
  useEffect(() => live.subscribe(() => setN((x) => x + 1)), []);
  useEffect(() => {
    if (!me.operator) return;
    api.get<{ items: Change[] }>('/v1/changes?order=desc&limit=200').then(
      (p) => setOlder(p.items),
      (e) => setError(String(e)),
    );
  }, [me.operator]);
  const seen = new Set(live.changes.map((c) => c.version));
  const items: (Change | EventChange)[] = [...live.changes, ...older.filter((c) => !seen.has(c.version))];
  return (
    <>
      <h1>Change log</h1>
      <p>
        {me.operator
          ? 'The newest 200 entries, and every new one as it is committed.'
          : "Your tenant's changes since this page was opened (the full log is read by operators)."}
      </p>
      <ErrorText error={error} />
      <div>{items.length > 0 ? <ChangeTable items={items} /> : <p>No changes yet.</p>}</div>
    </>
  );
}
