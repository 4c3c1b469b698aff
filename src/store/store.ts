// The Store seam: where the source of truth lives. SqliteStore (one file,
// embedded) and PostgresStore (shared by several server replicas) implement
// it; one contract suite (test/contract) runs against both.
import type { LoggedChange } from '../model/changes.js';

export type CommitListener = (version: number, changes?: readonly LoggedChange[]) => void;

import type { Repo } from './repo.js';

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /** Where it is, with any password removed (for logs and /healthz). */
  readonly location: string;

  /**
   * Runs `fn` in one transaction holding the cloud-wide write lock, so that
   * allocations (find a free number, then take it) and change-log versions
   * never race, across processes too. All or nothing: if `fn` throws,
   * nothing it wrote is kept. Not re-entrant.
   */
  write<T>(fn: (tx: Repo) => Promise<T>): Promise<T>;

  /** Runs `fn` against committed data, without the write lock. */
  read<T>(fn: (tx: Repo) => Promise<T>): Promise<T>;

  /**
   * Runs `fn` in one read transaction that sees a single committed state
   * throughout (REPEATABLE READ; a WAL read snapshot on SQLite): for loads
   * that must match one change-log version exactly.
   */
  snapshot<T>(fn: (tx: Repo) => Promise<T>): Promise<T>;

  /**
   * Removes shoot-downs by id (an SVP LOG_RM), only those of `hostIds` (the
   * hosts whose log the asking connection may trim; none: nothing goes).
   * Idempotent. Needs no cloud-wide write lock: nothing else depends on
   * these rows' absence.
   */
  removeShootdowns(ids: string[], hostIds: string[]): Promise<void>;

  /** Changes with version > `after`, in order, at most `limit`. */
  changesSince(after: number, limit: number): Promise<LoggedChange[]>;

  /** The newest committed version (0 for an empty log). */
  headVersion(): Promise<number>;

  /**
   * Calls `listener` after commits that appended changes: for this
   * process's commits synchronously, before write() resolves, with the
   * changes themselves; for other processes' (PostgreSQL NOTIFY) with the
   * version only. A wake-up, not a delivery guarantee: followers read the
   * log with changesSince when they see a gap. Returns the unsubscriber.
   */
  subscribe(listener: CommitListener): () => void;

  close(): Promise<void>;
}
