// SqliteStore: the embedded default, one file in WAL mode. Write
// transactions begin IMMEDIATE, taking SQLite's write lock up front, so a
// second process (such as `weft token create --db`) waits instead of failing.
// Reads use a second, read-only connection: in WAL mode they see the last
// commit without ever waiting for a write transaction in progress.
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { CamelCasePlugin, CompiledQuery, type DatabaseConnection, Kysely, Migrator, SqliteDialect, SqliteDriver, sql } from 'kysely';
import type { LoggedChange } from '../../model/changes.js';
import { WeftError } from '../../model/errors.js';
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

interface PendingWrite {
  fn: (tx: Repo) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
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
  private readonly pending: PendingWrite[] = [];
  private draining = false;
  /** Set by close(): called when the write queue has drained. */
  private idle: (() => void) | null = null;

  private constructor(
    path: string,
    private readonly sqlite: Database.Database,
    db: Kysely<DB>,
    reader: Kysely<DB>,
  ) {
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
    if (path === ':memory:' || path === '') return new SqliteStore(path, sqlite, db, db);
    const ro = new Database(path, { readonly: true });
    ro.pragma('busy_timeout = 10000');
    const reader = new Kysely<DB>({ dialect: new SqliteDialect({ database: cachingStatements(ro) }), plugins: [new CamelCasePlugin()] });
    return new SqliteStore(path, sqlite, db, reader);
  }

  /**
   * Write transactions run one at a time, in the order they were asked for
   * (Kysely's connection mutex wakes every waiter at once and lets a newcomer
   * in ahead of them, which is not first come, first served).
   *
   * Group commit: better-sqlite3 is synchronous, so the fsync of each COMMIT
   * (synchronous = FULL) blocks the event loop, and it was most of a write's
   * cost. Writes that queue up meanwhile run together in one SQLite
   * transaction, each inside its own SAVEPOINT (one that throws is rolled
   * back to it, alone), and share one COMMIT. None of them resolves before
   * that COMMIT returns, so an acknowledged write is as durable as before.
   */
  write<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        // One turn of the event loop first: requests whose bytes arrived together join one batch.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) await this.commitBatch(this.pending.splice(0, MAX_BATCH));
    } finally {
      this.draining = false;
      this.idle?.();
    }
  }

  private async commitBatch(batch: PendingWrite[]): Promise<void> {
    const done: { w: PendingWrite; out: unknown; appended: LoggedChange[] }[] = [];
    const failed: { w: PendingWrite; err: unknown }[] = [];
    const retry: PendingWrite[] = [];
    let aborted = false;
    try {
      await this.db.transaction().execute(async (trx) => {
        if (batch.length === 1) {
          // Alone: the transaction itself is the unit of rollback.
          const w = batch[0] as PendingWrite;
          const repo = new Repo(trx, this.cursorHints);
          done.push({ w, out: await w.fn(repo), appended: repo.appended });
          return;
        }
        for (const w of batch) {
          await sql`savepoint w`.execute(trx);
          const repo = new Repo(trx, this.cursorHints);
          try {
            const out = await w.fn(repo);
            await sql`release w`.execute(trx);
            done.push({ w, out, appended: repo.appended });
          } catch (err) {
            failed.push({ w, err });
            if (!this.sqlite.inTransaction) {
              // SQLite rolled the whole transaction back (I/O error, disk full):
              // the writes that had succeeded in it are gone; they run again in the next one.
              aborted = true;
              retry.push(...done.map((d) => d.w), ...batch.slice(batch.indexOf(w) + 1));
              done.length = 0;
              throw err;
            }
            await sql`rollback to w`.execute(trx);
            await sql`release w`.execute(trx);
          }
        }
      });
    } catch (err) {
      if (!aborted) {
        // The transaction as a whole failed (a lone write threw, or COMMIT did): nothing was kept.
        for (const w of batch) if (!failed.some((f) => f.w === w)) failed.push({ w, err });
        done.length = 0;
      }
    }
    this.pending.unshift(...retry);
    const appended = done.flatMap((d) => d.appended);
    const last = appended.at(-1);
    let listenerError: { e: unknown } | null = null;
    try {
      if (last !== undefined) for (const l of this.listeners) l(last.version, appended);
    } catch (e) {
      // Committed, but the caller hears of it (as when each write had its own transaction).
      listenerError = { e };
    }
    for (const d of done) listenerError ? d.w.reject(listenerError.e) : d.w.resolve(d.out);
    for (const f of failed) f.w.reject(f.err);
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
    if (this.draining) await new Promise<void>((r) => (this.idle = r));
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
