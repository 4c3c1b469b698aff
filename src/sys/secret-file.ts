// Files that hold a secret (an API or agent token): read only when no one but
// their owner may read them, written new and 0600.
import { closeSync, fstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { WeftError } from '../model/errors.js';

const mode = (m: number) => `0${(m & 0o777).toString(8)}`;

/**
 * The secret in `path` (its first line, trimmed), for the flag `flag`.
 * Refuses a file group or others may read, or an empty one, naming the
 * flag, the file and the fix.
 */
export function readSecretFile(flag: string, path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new WeftError(
      'E_INVALID_ARG',
      `invalid ${flag} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      flag,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new WeftError('E_INVALID_ARG', `invalid ${flag} ${path}: not a regular file`, flag);
    if ((st.mode & 0o077) !== 0)
      throw new WeftError(
        'E_INVALID_ARG',
        `invalid ${flag} ${path}: its mode ${mode(st.mode)} lets group or others read the token; make it the owner's alone: chmod 600 ${path}`,
        flag,
      );
    const secret = (readFileSync(fd, 'utf8').split('\n')[0] ?? '').trim();
    if (secret === '') throw new WeftError('E_INVALID_ARG', `invalid ${flag} ${path}: the file is empty (it must hold the token)`, flag);
    return secret;
  } finally {
    closeSync(fd);
  }
}

/** Writes `secret` to a new file `path`, mode 0600; refuses to overwrite one (a token's secret is shown once). */
export function writeSecretFile(flag: string, path: string, secret: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new WeftError(
      'E_INVALID_ARG',
      `invalid ${flag} ${path}: ${code === 'EEXIST' ? 'the file exists (weft writes a new file only; remove it or pick another name)' : (e as Error).message}`,
      flag,
    );
  }
  try {
    writeSync(fd, `${secret}\n`);
  } finally {
    closeSync(fd);
  }
}
