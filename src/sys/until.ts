// Polls until a condition holds, or fails naming what it waited for.
import { WeftError } from '../model/errors.js';

export async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new WeftError('E_UNAVAILABLE', `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
