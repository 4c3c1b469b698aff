// SqliteStore: the embedded default, one file in WAL mode. Write
// transactions begin IMMEDIATE, taking SQLite's write lock up front, so a
// second process (such as `weft token create --db`) waits instead of failing.
// Reads use a second, read-only connection: in WAL mode they see the last
// commit without ever waiting for a write transaction in progress.
import Database from 'better-sqlite3';
import { CamelCasePlugin, CompiledQuery, type DatabaseConnection, Kysely, Migrator, SqliteDialect, SqliteDriver } from 'kysely';
import type { LoggedChange } from '../../model/changes.js';
import { migrations } from '../migrations/index.js';
import { Repo } from '../repo.js';
import type { DB } from '../schema.js';
import type { CommitListener, Store } from '../store.js';

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
  private readonly reader: Kysely<DB>;
  private readonly listeners = new Set<CommitListener>();
  private readonly cursorHints = new Map<string, bigint>();
  private writeTail: Promise<void> = Promise.resolve();

  private constructor(path: string, db: Kysely<DB>, reader: Kysely<DB>) {
    this.location = `sqlite:${path}`;
    this.db = db;
    this.reader = reader;
  }

  /**
   * Opens (creating if needed) the file at `path` (`:memory:` for a
   * throwaway) and migrates it to the latest schema, or to `upTo` (tests of
   * the migrations themselves).
   */
  static async open(path: string, opts: { upTo?: string } = {}): Promise<SqliteStore> {
    const sqlite = new Database(path);
    sqlite.pragma('journal_mode = WAL');
    // FULL: a commit the API acknowledged survives a power cut.
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 10000');
    const db = new Kysely<DB>({ dialect: new ImmediateSqliteDialect({ database: cachingStatements(sqlite) }), plugins: [new CamelCasePlugin()] });
    await migrate(db, opts.upTo);
    // An in-memory database exists only on its own connection: read through it too.
    if (path === ':memory:' || path === '') return new SqliteStore(path, db, db);
    const ro = new Database(path, { readonly: true });
    ro.pragma('busy_timeout = 10000');
    const reader = new Kysely<DB>({ dialect: new SqliteDialect({ database: cachingStatements(ro) }), plugins: [new CamelCasePlugin()] });
    return new SqliteStore(path, db, reader);
  }

  /**
   * Write transactions run one at a time, in the order they were asked for:
   * Kysely's connection mutex wakes every waiter at once and lets a newcomer
   * in ahead of them, which is not first come, first served.
   */
  write<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    const run = this.writeTail.then(() => this.writeNow(fn));
    this.writeTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async writeNow<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    let repo: Repo | undefined;
    const out = await this.db.transaction().execute(async (trx) => {
      repo = new Repo(trx, this.cursorHints);
      return fn(repo);
    });
    const appended = repo?.appended ?? [];
    const last = appended.at(-1);
    if (last !== undefined) for (const l of this.listeners) l(last.version, appended);
    return out;
  }

  read<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    return fn(new Repo(this.reader));
  }

  snapshot<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    // A read transaction on the reader: WAL keeps its view fixed until it ends.
    return this.reader.transaction().execute((trx) => fn(new Repo(trx)));
  }

  removeShootdowns(ids: string[]): Promise<void> {
    // SQLite has one writer: through the write queue, but it appends nothing.
    return this.write((tx) => tx.removeShootdowns(ids));
  }

  changesSince(after: number, limit: number): Promise<LoggedChange[]> {
    return new Repo(this.reader).changesSince(after, limit);
  }

  headVersion(): Promise<number> {
    return new Repo(this.reader).headVersion();
  }

  subscribe(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.writeTail;
    if (this.reader !== this.db) await this.reader.destroy();
    await this.db.destroy();
  }
}

/** Most queries repeat with other parameters; these many prepared statements are kept. */
const STATEMENT_CACHE = 512;

/**
 * Kysely prepares every query afresh; better-sqlite3 statements can be
 * reused, so keep the recent ones (insertion-ordered Map: the oldest goes
 * first when full). A tenth of the server's CPU went to preparing.
 */
function cachingStatements(sqlite: Database.Database) {
  const cache = new Map<string, Database.Statement>();
  return {
    prepare(sql: string) {
      let s = cache.get(sql);
      if (!s) {
        s = sqlite.prepare(sql);
        if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value as string);
        cache.set(sql, s);
      }
      return s;
    },
    close() {
      cache.clear();
      sqlite.close();
    },
  };
}

export async function migrate(db: Kysely<DB>, upTo?: string): Promise<void> {
  const m = new Migrator({ db, provider: migrations });
  const { error, results } = upTo === undefined ? await m.migrateToLatest() : await m.migrateTo(upTo);
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? '?';
    throw new Error(`schema migration ${failed} failed: ${(error as Error).message ?? String(error)}`);
  }
}
