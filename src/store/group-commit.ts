// Group commit, for both stores: write transactions run one at a time, in
// the order they were asked for, and the writes that queue up while one
// group runs go together into the next transaction, each inside its own
// SAVEPOINT (one that throws is rolled back to it, alone), sharing one
// COMMIT. None resolves before that COMMIT returns, so an acknowledged write
// is as durable as with a transaction of its own, and the change log stays
// gap-free in commit order. A lone write is its own transaction. If the
// transaction itself is lost (SQLite aborted it, PostgreSQL's connection
// dropped), the writes that had succeeded in it run again in the next one.
import { sql, type Transaction } from 'kysely';
import type { LoggedChange } from '../model/changes.js';
import { Repo } from './repo.js';
import type { DB } from './schema.js';
import type { CommitListener } from './store.js';

interface PendingWrite {
  fn: (tx: Repo) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  /** The most writes that share one COMMIT. */
  maxBatch: number;
  /** Runs `body` in one transaction of the store, taking its write lock first; rejects if the transaction fails. */
  transaction: (body: (trx: Transaction<DB>) => Promise<void>) => Promise<void>;
  cursorHints: Map<string, bigint>;
  /** After a group's writes, in its transaction, with the last version they appended (PostgreSQL: NOTIFY). */
  beforeCommit?: (trx: Transaction<DB>, lastVersion: number) => Promise<void>;
  /** Told of each committed group's changes. */
  listeners: ReadonlySet<CommitListener>;
  /** Wait one turn of the event loop before the first group, so requests whose bytes arrived together join it. */
  deferFirst: boolean;
}

export class GroupCommit {
  private readonly pending: PendingWrite[] = [];
  private draining = false;
  private idle: (() => void) | null = null;

  constructor(private readonly o: GroupCommitOptions) {}

  write<T>(fn: (tx: Repo) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        if (this.o.deferFirst) setImmediate(() => void this.drain());
        else void this.drain();
      }
    });
  }

  /** Resolves once no write is queued or running. */
  async drained(): Promise<void> {
    if (this.draining) await new Promise<void>((r) => (this.idle = r));
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) await this.commitBatch(this.pending.splice(0, this.o.maxBatch));
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
      await this.o.transaction(async (trx) => {
        if (batch.length === 1) {
          // Alone: the transaction itself is the unit of rollback.
          const w = batch[0] as PendingWrite;
          const repo = new Repo(trx, this.o.cursorHints);
          done.push({ w, out: await w.fn(repo), appended: repo.appended });
        } else {
          for (const [i, w] of batch.entries()) {
            await sql`savepoint w`.execute(trx);
            const repo = new Repo(trx, this.o.cursorHints);
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
                // No savepoint to go back to: the transaction itself is gone (SQLite rolled it
                // back on an I/O error or a full disk; PostgreSQL's connection dropped). What had
                // succeeded in it is gone too; it runs again in the next one.
                aborted = true;
                retry.push(...done.map((d) => d.w), ...batch.slice(i + 1));
                done.length = 0;
                throw lost;
              }
            }
          }
        }
        const last = done.flatMap((d) => d.appended).at(-1);
        if (last !== undefined && this.o.beforeCommit) await this.o.beforeCommit(trx, last.version);
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
      if (last !== undefined) for (const l of this.o.listeners) l(last.version, appended);
    } catch (e) {
      // Committed, but the caller hears of it (as when each write had its own transaction).
      listenerError = { e };
    }
    for (const d of done) listenerError ? d.w.reject(listenerError.e) : d.w.resolve(d.out);
    for (const f of failed) f.w.reject(f.err);
  }
}
