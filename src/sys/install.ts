// Where this weft is installed: the directory holding its package.json and
// bin/weft. A module runs from src/sys/ (tsx, the tests) or from a build
// (dist/<build>/sys/, one level deeper; /usr/lib/weft/dist/current/sys/ in the
// Debian package); both find the same directory.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Installed {
  root: string;
  version: string;
}

let found: Installed | undefined;

function find(): Installed {
  for (const up of ['../..', '../../..']) {
    const root = join(import.meta.dirname, up);
    try {
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'weft') return { root, version: typeof pkg.version === 'string' ? pkg.version : 'unknown' };
    } catch {
      // not here: one level up
    }
  }
  // Never in a checkout or the package; a copied-out module falls back to src/'s layout.
  return { root: join(import.meta.dirname, '../..'), version: 'unknown' };
}

/** The installation's root directory (package.json, bin/weft, dist/, node_modules/). */
export function weftRoot(): string {
  found ??= find();
  return found.root;
}

/** The `version` of weft's package.json, "unknown" if it cannot be read. */
export function weftVersion(): string {
  found ??= find();
  return found.version;
}
