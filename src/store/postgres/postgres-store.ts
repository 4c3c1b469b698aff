// PostgresStore: the store several server replicas share. Writers serialize
// on one transaction-scoped advisory lock (held until commit, so change-log
// versions commit in order with no gaps); commits NOTIFY the other replicas.
import { CamelCasePlugin, Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { LoggedChange } from '../../model/changes.js';
import { Repo } from '../repo.js';
import type { DB } from '../schema.js';
import { migrate } from '../sqlite/sqlite-store.js';
import type { CommitListener, Store } from '../store.js';

/** "WEFT" as a 32-bit number: the advisory lock every writer takes. */
const WRITE_LOCK = 0x57454654;
export const CHANGE_CHANNEL = 'weft_changes';

interface PendingWrite {
  fn: (tx: Repo) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** The most writes that share one COMMIT (PostgreSQL's client is asynchronous: a group stalls nothing else). */
const MAX_BATCH = 64;

// int8 (the change-log version, ASNs) as a JS number: safe up to 2^53.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  readonly location: string;
  private readonly db: Kysely<DB>;
  private readonly url: string;
  private readonly listeners = new Set<CommitListener>();
  private readonly cursorHints = new Map<string, bigint>();
  private listenClient: pg.Client | null = null;
  private listening: Promise<void> | null = null;
  private closed = false;
  private readonly pending: PendingWrite[] = [];
  private draining = false;

  private constructor(url: string, db: Kysely<DB>) {
    this.url = url;
    this.location = redact(url);
    this.db = db;
  }

  /** Connects and migrates to the latest schema, or to `upTo` (tests of the migrations themselves). */
  static async open(url: string, opts: { poolSize?: number; upTo?: string } = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10 });
    // An idle pooled connection that PostgreSQL ends (a restart, a terminated
    // backend) emits 'error' on the pool; unheard, that would crash the
    // server. The pool drops that client and the next query opens another.
    pool.on('error', () => undefined);
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), plugins: [new CamelCasePlugin()] });
    // Replicas starting together are safe: Kysely's Migrator runs the
    // migrations in one transaction holding its own advisory lock.
    await migrate(db, opts.upTo);
    return new PostgresStore(url, db);
  }

  /**
   * Group commit, as on SQLite (sqlite-store.ts): a COMMIT waits for
   * PostgreSQL's WAL flush, and with every writer serialized on the advisory
   * lock that flush, one per write, was what bounded the write rate. Writes
   * that queue up while a group runs go together into the next transaction
   * (one lock, one flush, one NOTIFY), each inside its own SAVEPOINT: one
   * that throws is rolled back to it, alone. None resolves before the
   * COMMIT, so an acknowledged write is as durable as before, and versions
   * stay gap-free in commit order. A lone write is its own transaction.
   */
  write<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        void this.drain();
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) await this.commitBatch(this.pending.splice(0, MAX_BATCH));
    } finally {
      this.draining = false;
    }
  }

  private async commitBatch(batch: PendingWrite[]): Promise<void> {
    const done: { w: PendingWrite; out: unknown; appended: LoggedChange[] }[] = [];
    const failed: { w: PendingWrite; err: unknown }[] = [];
    const retry: PendingWrite[] = [];
    let aborted = false;
    try {
      await this.db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${WRITE_LOCK})`.execute(trx);
        if (batch.length === 1) {
          const w = batch[0] as PendingWrite;
          const repo = new Repo(trx, this.cursorHints);
          done.push({ w, out: await w.fn(repo), appended: repo.appended });
        } else {
          for (const [i, w] of batch.entries()) {
            await sql`savepoint w`.execute(trx);
            const repo = new Repo(trx, this.cursorHints);
            try {
              const out = await w.fn(repo);
              await sql`release savepoint w`.execute(trx);
              done.push({ w, out, appended: repo.appended });
            } catch (err) {
              failed.push({ w, err });
              try {
                await sql`rollback to savepoint w`.execute(trx);
                await sql`release savepoint w`.execute(trx);
              } catch (lost) {
                // The transaction itself is gone (the connection dropped): what had succeeded in it runs again in the next one.
                aborted = true;
                retry.push(...done.map((d) => d.w), ...batch.slice(i + 1));
                done.length = 0;
                throw lost;
              }
            }
          }
        }
        const last = done.flatMap((d) => d.appended).at(-1);
        // NOTIFY is transactional: delivered to listeners only on commit.
        if (last !== undefined) await sql`select pg_notify(${CHANGE_CHANNEL}, ${String(last.version)})`.execute(trx);
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
    return fn(new Repo(this.db));
  }

  snapshot<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    return this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute((trx) => fn(new Repo(trx)));
  }

  removeShootdowns(ids: string[], hostIds: string[]): Promise<void> {
    return new Repo(this.db).removeShootdowns(ids, hostIds);
  }

  changesSince(after: number, limit: number): Promise<LoggedChange[]> {
    return new Repo(this.db).changesSince(after, limit);
  }

  headVersion(): Promise<number> {
    return new Repo(this.db).headVersion();
  }

  subscribe(listener: CommitListener): () => void {
    this.listeners.add(listener);
    if (!this.listening) this.listening = this.listen();
    return () => this.listeners.delete(listener);
  }

  /** A dedicated connection for LISTEN; reconnects with capped backoff if it drops. */
  private async listen(): Promise<void> {
    let delay = 100;
    while (!this.closed) {
      const client = new pg.Client({ connectionString: this.url });
      // Errors end this connection (the wait below sees 'end'); never unhandled.
      const ended = new Promise<void>((resolve) => {
        client.on('error', () => resolve());
        client.on('end', () => resolve());
      });
      try {
        await client.connect();
        this.listenClient = client;
        client.on('notification', (m) => {
          const v = Number(m.payload);
          if (Number.isFinite(v)) for (const l of this.listeners) l(v);
        });
        await client.query(`LISTEN ${CHANGE_CHANNEL}`);
        delay = 100;
        await ended;
      } catch {
        // fall through to the backoff below
      }
      this.listenClient = null;
      await client.end().catch(() => {});
      if (this.closed) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    await this.listenClient?.end().catch(() => {});
    await this.db.destroy();
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable url)';
  }
}
