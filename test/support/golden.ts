// Golden files for rendered configs: compare output with a file under
// test/fixtures, or rewrite the file when UPDATE_GOLDEN=1.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = join(import.meta.dirname, '..', 'fixtures');

/** The absolute path of a fixture, e.g. `fixture('guards/full.nft')`. */
export const fixture = (rel: string): string => join(root, rel);

/**
 * Asserts that `actual` equals the golden file `rel` (relative to
 * test/fixtures). With UPDATE_GOLDEN=1 it writes the file instead; a missing
 * file fails with the command that creates it.
 */
export function assertGolden(rel: string, actual: string): void {
  const path = fixture(rel);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path)) assert.fail(`golden file ${rel} is missing: run the test with UPDATE_GOLDEN=1 to create it`);
  assert.equal(actual, readFileSync(path, 'utf8'), `output differs from ${rel} (UPDATE_GOLDEN=1 rewrites it after review)`);
}
