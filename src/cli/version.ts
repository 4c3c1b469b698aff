// Weft's version, from its package.json: beside src/ in a checkout (src/cli/
// through tsx), one level further up from a build (dist/<build>/cli/), the
// same in the Debian package (/usr/lib/weft/dist/current/cli/).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The `version` of the nearest package.json named weft above this module, or "unknown" if none is found. */
export function weftVersion(): string {
  for (const up of ['../..', '../../..']) {
    try {
      const pkg = JSON.parse(readFileSync(join(import.meta.dirname, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'weft' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here: one level up
    }
  }
  return 'unknown';
}
