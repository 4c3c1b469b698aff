// Fresh stores for tests: SQLite in a temp file, PostgreSQL as a new
// database in the cluster the test runner started (WEFT_TEST_PG_URL).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';

export type Dialect = 'sqlite' | 'postgres';
export const DIALECTS: Dialect[] = ['sqlite', 'postgres'];

export interface TestDb {
  /** A --db URL for this database (other processes may open it too). */
  url: string;
  /** Opens it, migrated to the latest schema or to `upTo`. */
  open(upTo?: string): Promise<Store>;
  drop(): Promise<void>;
}

export function pgAdminUrl(): string {
  const url = process.env.WEFT_TEST_PG_URL;
  if (!url) throw new Error('WEFT_TEST_PG_URL is not set: run the tests with `npm test`, which starts a PostgreSQL cluster');
  return url;
}

export async function testDb(dialect: Dialect): Promise<TestDb> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'weft-sqlite-'));
    const path = join(dir, 'weft.db');
    return { url: `sqlite:${path}`, open: (upTo) => SqliteStore.open(path, { upTo }), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const admin = pgAdminUrl();
  const name = `weft_test_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  const url = u.toString();
  return {
    url,
    open: (upTo) => PostgresStore.open(url, { upTo }),
    async drop() {
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}
