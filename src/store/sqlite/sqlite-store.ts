// SqliteStore: the embedded default, one file in WAL mode. Write
// transactions begin IMMEDIATE, taking SQLite's write lock up front, so a
// second process (such as `weft token create --db`) waits instead of failing.
// Reads use a second, read-only connection: in WAL mode they see the last
// commit without ever waiting for a write transaction in progress.
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { CamelCasePlugin, CompiledQuery, type DatabaseConnection, Kysely, Migrator, SqliteDialect, SqliteDriver } from 'kysely';
import type { LoggedChange } from '../../model/changes.js';
import { WeftError } from '../../model/errors.js';
import { GroupCommit } from '../group-commit.js';
import { migrations } from '../migrations/index.js';
import { Repo } from '../repo.js';
import type { DB } from '../schema.js';
import type { CommitListener, Store } from '../store.js';

/**
 * The database holds every token's hash and every tenant's layout: it is
 * created 0600 (SQLite gives its -wal and -shm files the database's mode),
 * and an existing file, or its -wal or -shm, that group or others may read
 * is tightened to its owner's bits alone.
 */
function ownerOnly(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  for (const f of [path, `${path}-wal`, `${path}-shm`]) {
    if (!existsSync(f)) continue;
    const mode = statSync(f).mode & 0o777;
    if ((mode & 0o077) !== 0) chmodSync(f, mode & 0o700);
  }
}

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

/**
 * The most writes that share one COMMIT. A group runs without yielding to
 * the event loop (SVP lookups, the push stream wait for it), so this bounds
 * that stall; 16 already spreads one fsync over enough writes to be a small
 * part of each.
 */
const MAX_BATCH = 16;

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly location: string;
  private readonly db: Kysely<DB>;
  private readonly reader: Kysely<DB>;
  private readonly listeners = new Set<CommitListener>();
  private readonly cursorHints = new Map<string, bigint>();
  private readonly writes: GroupCommit;

  private constructor(path: string, db: Kysely<DB>, reader: Kysely<DB>) {
    this.location = `sqlite:${path}`;
    this.db = db;
    this.reader = reader;
    this.writes = new GroupCommit({
      maxBatch: MAX_BATCH,
      transaction: (body) => this.db.transaction().execute(body),
      cursorHints: this.cursorHints,
      listeners: this.listeners,
      deferFirst: true,
    });
  }

  /**
   * Opens (creating if needed) the file at `path` (`:memory:` for a
   * throwaway) and migrates it to the latest schema, or to `upTo` (tests of
   * the migrations themselves).
   */
  static async open(path: string, opts: { upTo?: string } = {}): Promise<SqliteStore> {
    if (path !== ':memory:' && path !== '') ownerOnly(path);
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
   * Write transactions run one at a time, in the order they were asked for
   * (Kysely's connection mutex wakes every waiter at once and lets a newcomer
   * in ahead of them, which is not first come, first served).
   *
   * Group commit (group-commit.ts): better-sqlite3 is synchronous, so the
   * fsync of each COMMIT (synchronous = FULL) blocks the event loop, and it
   * was most of a write's cost; a group shares one.
   */
  write<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    return this.writes.write(fn);
  }

  read<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    return fn(new Repo(this.reader));
  }

  snapshot<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    // A read transaction on the reader: WAL keeps its view fixed until it ends.
    return this.reader.transaction().execute((trx) => fn(new Repo(trx)));
  }

  removeShootdowns(ids: string[], hostIds: string[]): Promise<void> {
    if (ids.length === 0 || hostIds.length === 0) return Promise.resolve();
    // SQLite has one writer: through the write queue, but it appends nothing.
    return this.write((tx) => tx.removeShootdowns(ids, hostIds));
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
    await this.writes.drained();
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
    throw new WeftError('E_INTERNAL', `schema migration ${failed} failed: ${(error as Error).message ?? String(error)}`, undefined, { cause: error });
  }
}
