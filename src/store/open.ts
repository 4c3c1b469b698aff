// Opens the store a `--db` URL names: `sqlite:PATH` (or a bare path) or
// `postgres://...` / `postgresql://...`.
import { invalid } from '../model/errors.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

export const DEFAULT_DB = 'sqlite:weft.db';

export async function openStore(url: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(url)) return PostgresStore.open(url);
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw invalid('db', url, 'sqlite: needs a path, e.g. sqlite:/var/lib/weft/weft.db');
    return SqliteStore.open(path);
  }
  if (/^[a-z]+:\/\//.test(url)) throw invalid('db', url, 'must be sqlite:PATH or postgres://USER@HOST/DB');
  return SqliteStore.open(url);
}
