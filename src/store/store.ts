// The Store seam: where the source of truth lives. SqliteStore (one file,
// embedded) and PostgresStore (shared by several server replicas) implement
// it; one contract suite (test/contract) runs against both.
import type { LoggedChange } from '../model/changes.js';
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

  /** Changes with version > `after`, in order, at most `limit`. */
  changesSince(after: number, limit: number): Promise<LoggedChange[]>;

  /** The newest committed version (0 for an empty log). */
  headVersion(): Promise<number>;

  /**
   * Calls `listener` with a version after commits that appended changes
   * (this process's and, on PostgreSQL, other processes' too). A wake-up,
   * not a delivery guarantee: followers read the log with changesSince.
   * Returns the function that unsubscribes.
   */
  subscribe(listener: (version: number) => void): () => void;

  close(): Promise<void>;
}
