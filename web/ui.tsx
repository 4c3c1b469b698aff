// Small shared pieces: data loading with errors in words, action buttons
// whose failure is announced (aria-live), searchable tables, badges.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, type EventChange } from './api.js';
import { live } from './live.js';

export type Loaded<T> = { data: T | null; error: string | null; reload: () => void };

/**
 * Loads `fn()` and again whenever a change arrives that `touches` says
 * matters (debounced), so a page follows the cloud without polling.
 */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[], touches: (c: EventChange) => boolean = () => true): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [n, setN] = useState(0);
  const reload = useCallback(() => setN((x) => x + 1), []);
  useEffect(() => {
    let current = true;
    fn().then(
      (d) => {
        if (!current) return;
        setData(d);
        setError(null);
      },
      (e: unknown) => current && setError(e instanceof ApiError ? e.message : String(e)),
    );
    return () => {
      current = false;
    };
  }, [...deps, n]);
  const touchRef = useRef(touches);
  touchRef.current = touches;
  useEffect(() => {
    let timer: number | null = null;
    const off = live.onChange((c) => {
      if (!touchRef.current(c) || timer !== null) return;
      timer = window.setTimeout(() => {
        timer = null;
        reload();
      }, 250);
    });
    return () => {
      off();
      if (timer !== null) window.clearTimeout(timer);
    };
  }, [reload]);
  return { data, error, reload };
}

/** The API's error, in words, where a screen reader announces it. */
export function ErrorText({ error, id }: { error: string | null; id?: string }) {
  return (
    <p class="error" role="alert" aria-live="assertive" id={id}>
      {error ? `Error: ${error}` : ''}
    </p>
  );
}

/** A page's loading and error states around its content. */
export function Guard<T>({ load, children }: { load: Loaded<T>; children: (d: T) => ComponentChildren }) {
  if (load.error && load.data === null) return <ErrorText error={load.error} />;
  if (load.data === null) return <p aria-busy="true">Loading…</p>;
  return (
    <>
      {load.error ? <ErrorText error={load.error} /> : null}
      {children(load.data)}
    </>
  );
}

/** Runs an action; its status (working, done, the API's error) is announced in a live region. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const run = async (what: () => Promise<unknown>, success: string) => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await what();
      setDone(success);
      return true;
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      return false;
    } finally {
      setBusy(false);
    }
  };
  const status = (
    <div class="action-status">
      <ErrorText error={error} />
      <p class="ok" role="status" aria-live="polite">
        {done ?? ''}
      </p>
    </div>
  );
  return { busy, run, status, error };
}

export interface Column<T> {
  label: string;
  value: (row: T) => string;
  render?: (row: T) => ComponentChildren;
  numeric?: boolean;
}

/** A table with a search box over every column's text. */
export function SearchTable<T>({
  rows,
  columns,
  caption,
  rowKey,
  rowClass,
}: {
  rows: T[];
  columns: Column<T>[];
  caption: string;
  rowKey: (r: T) => string;
  rowClass?: (r: T) => string;
}) {
  const [q, setQ] = useState('');
  const id = useMemo(() => `search-${caption.replace(/\W+/g, '-').toLowerCase()}`, [caption]);
  const shown = useMemo(() => {
    const words = q.toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length === 0) return rows;
    return rows.filter((r) => {
      const text = columns
        .map((c) => c.value(r))
        .join(' ')
        .toLowerCase();
      return words.every((w) => text.includes(w));
    });
  }, [rows, columns, q]);
  return (
    <div class="search-table">
      <div class="search">
        <label for={id}>Search {caption.toLowerCase()}</label>
        <input id={id} type="search" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} autocomplete="off" />
        <span class="count" aria-live="polite">
          {shown.length} of {rows.length}
        </span>
      </div>
      <table>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.label} scope="col" class={c.numeric ? 'num' : ''}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={rowKey(r)} class={rowClass?.(r) ?? ''}>
              {columns.map((c) => (
                <td key={c.label} class={c.numeric ? 'num' : ''}>
                  {c.render ? c.render(r) : c.value(r)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {shown.length === 0 ? <p>Nothing matches.</p> : null}
    </div>
  );
}

/** A definition list of an object's fields. */
export function Fields({ items }: { items: [string, ComponentChildren][] }) {
  return (
    <dl class="fields">
      {items.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v === null || v === undefined || v === '' ? '—' : v}</dd>
        </div>
      ))}
    </dl>
  );
}

/** A state in words with a colour that only repeats them. */
export function Badge({ text, tone }: { text: string; tone: 'good' | 'warn' | 'bad' | 'neutral' }) {
  return <span class={`badge ${tone}`}>{text}</span>;
}

export const stateTone = (s: string): 'good' | 'warn' | 'bad' | 'neutral' =>
  s === 'active' || s === 'running' || s === 'Established' ? 'good' : s === 'draining' || s === 'stopped' ? 'warn' : s === 'down' ? 'bad' : 'neutral';

/** Used against total, as a bar and in words. */
export function Usage({ used, total, unit, label }: { used: number; total: number; unit: string; label: string }) {
  const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
  return (
    <span class="usage">
      <meter min={0} max={total || 1} value={used} high={(total || 1) * 0.85} aria-label={`${label} used`} />
      <span>
        {used}/{total} {unit}
      </span>
      <span class="visually-hidden"> ({pct}%)</span>
    </span>
  );
}

export const link = (path: string, text: string) => <a href={`#${path}`}>{text}</a>;

export const time = (iso: string) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { hour12: false });
};
