// `weft backup`: an online copy of a running server's SQLite store through
// SQLite's backup API (better-sqlite3's backup()), written beside the target
// and renamed into place once complete and synced: never a partial FILE.
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { invalid, WeftError } from '../../model/errors.js';

export interface SqliteBackup {
  /** The backup's size in bytes. */
  bytes: number;
  /** The newest change-log version it holds (0: an empty log). */
  version: number;
}

/**
 * Copies the SQLite database at `source` to the new file `to` (mode 0600:
 * it holds token hashes), while a server may be writing to it. One
 * consistent state: the copy is taken in one step of the backup API, inside
 * one read transaction that sees the WAL's committed pages (no -wal file goes
 * with it); the server's writes are not blocked meanwhile (WAL mode), and one
 * that commits between steps makes SQLite start the copy again. Refuses a
 * `to` that exists and a `source` that does not; leaves nothing at `to` when
 * it fails. Checked with `PRAGMA quick_check` before it is renamed into place.
 */
export async function backupSqlite(source: string, to: string): Promise<SqliteBackup> {
  if (!existsSync(source) || !statSync(source).isFile()) throw invalid('--db', `sqlite:${source}`, 'no such database file');
  if (existsSync(to)) throw invalid('--to', to, 'exists already: weft backup never overwrites a file; remove it or name a new one');
  if (!existsSync(dirname(to))) throw invalid('--to', to, `its directory ${dirname(to)} does not exist`);
  const tmp = join(dirname(to), `.${basename(to)}.${process.pid}.partial`);
  closeSync(openSync(tmp, 'wx', 0o600));
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    // All the pages in the first step: one read transaction, so a busy server cannot keep restarting the copy.
    await db.backup(tmp, { progress: () => 1 << 30 });
    db.close();
    const copy = new Database(tmp, { fileMustExist: true });
    let version = 0;
    try {
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new WeftError('E_INTERNAL', `the backup of sqlite:${source} fails quick_check: ${String(check)}`);
      const row = copy.prepare('select max(version) as v from changes').get() as { v: number | bigint | null } | undefined;
      version = row?.v == null ? 0 : Number(row.v);
    } finally {
      copy.close();
    }
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, to);
    const dir = openSync(dirname(to), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    return { bytes: statSync(to).size, version };
  } catch (e) {
    if (db.open) db.close();
    rmSync(tmp, { force: true });
    for (const f of [`${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]) rmSync(f, { force: true });
    if (e instanceof WeftError) throw e;
    throw new WeftError('E_INTERNAL', `backup of sqlite:${source} to ${to} failed: ${(e as Error).message}`, undefined, { cause: e });
  }
}
