// SqliteStore: the embedded default, one file in WAL mode. Write
// transactions begin IMMEDIATE, taking SQLite's write lock up front, so a
// second process (such as `weft token create --db`) waits instead of failing.
import Database from 'better-sqlite3';
import { CamelCasePlugin, CompiledQuery, type DatabaseConnection, Kysely, Migrator, SqliteDialect, SqliteDriver } from 'kysely';
import type { LoggedChange } from '../../model/changes.js';
import { migrations } from '../migrations/index.js';
import { Repo } from '../repo.js';
import type { DB } from '../schema.js';
import type { Store } from '../store.js';

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly cfg: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(cfg);
  }
  override createDriver() {
    return new ImmediateSqliteDriver(this.cfg);
  }
}

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly location: string;
  private readonly db: Kysely<DB>;
  private readonly listeners = new Set<(v: number) => void>();

  private constructor(path: string, db: Kysely<DB>) {
    this.location = `sqlite:${path}`;
    this.db = db;
  }

  /** Opens (creating if needed) the file at `path` (`:memory:` for a throwaway) and migrates it. */
  static async open(path: string): Promise<SqliteStore> {
    const sqlite = new Database(path);
    sqlite.pragma('journal_mode = WAL');
    // FULL: a commit the API acknowledged survives a power cut.
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 10000');
    sqlite.defaultSafeIntegers(false);
    const db = new Kysely<DB>({ dialect: new ImmediateSqliteDialect({ database: sqlite }), plugins: [new CamelCasePlugin()] });
    await migrate(db);
    return new SqliteStore(path, db);
  }

  async write<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    let repo: Repo | undefined;
    const out = await this.db.transaction().execute(async (trx) => {
      repo = new Repo(trx);
      return fn(repo);
    });
    const last = repo?.appended.at(-1);
    if (last !== undefined) for (const l of this.listeners) l(last);
    return out;
  }

  read<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    return fn(new Repo(this.db));
  }

  changesSince(after: number, limit: number): Promise<LoggedChange[]> {
    return new Repo(this.db).changesSince(after, limit);
  }

  headVersion(): Promise<number> {
    return new Repo(this.db).headVersion();
  }

  subscribe(listener: (version: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.db.destroy();
  }
}

export async function migrate(db: Kysely<DB>): Promise<void> {
  const { error, results } = await new Migrator({ db, provider: migrations }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? '?';
    throw new Error(`schema migration ${failed} failed: ${(error as Error).message ?? String(error)}`);
  }
}
