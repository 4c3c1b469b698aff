// PostgresStore: the store several server replicas share. Writers serialize
// on one transaction-scoped advisory lock (held until commit, so change-log
// versions commit in order with no gaps); commits NOTIFY the other replicas.
import { CamelCasePlugin, Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { LoggedChange } from '../../model/changes.js';
import { GroupCommit } from '../group-commit.js';
import { Repo } from '../repo.js';
import type { DB } from '../schema.js';
import { migrate } from '../sqlite/sqlite-store.js';
import type { CommitListener, Store } from '../store.js';

/** "WEFT" as a 32-bit number: the advisory lock every writer takes. */
const WRITE_LOCK = 0x57454654;
export const CHANGE_CHANNEL = 'weft_changes';

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
  private readonly writes: GroupCommit;

  private constructor(url: string, db: Kysely<DB>) {
    this.url = url;
    this.location = redact(url);
    this.db = db;
    this.writes = new GroupCommit({
      maxBatch: MAX_BATCH,
      // One transaction-scoped advisory lock for every writer of every replica, held until COMMIT.
      transaction: (body) =>
        this.db.transaction().execute(async (trx) => {
          await sql`select pg_advisory_xact_lock(${WRITE_LOCK})`.execute(trx);
          await body(trx);
        }),
      cursorHints: this.cursorHints,
      // NOTIFY is transactional: delivered to the other replicas only on commit.
      beforeCommit: async (trx, last) => {
        await sql`select pg_notify(${CHANGE_CHANNEL}, ${String(last)})`.execute(trx);
      },
      listeners: this.listeners,
      deferFirst: false,
    });
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
   * Group commit (group-commit.ts): a COMMIT waits for PostgreSQL's WAL
   * flush, and with every writer serialized on the advisory lock, one flush
   * per write bounded the write rate; a group shares one lock, one flush and
   * one NOTIFY.
   */
  write<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    return this.writes.write(fn);
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
