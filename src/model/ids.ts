// Time-ordered ids (UUID version 7): sorting by id is sorting by creation,
// which makes keyset paging follow creation order.
import { randomUUID } from 'node:crypto';

export function newId(now: number = Date.now()): string {
  // The random bits come from randomUUID, which draws from a cached pool of
  // entropy: randomBytes(16) per id was a syscall-sized cost on every create.
  // A v4 UUID is 8-4-4-4-12 hex with its version at [14] and variant at [19];
  // keep its random bits after the version, and put the 48-bit millisecond
  // time in front with version 7 (the variant bits are the same in both).
  const r = randomUUID();
  const t = now.toString(16).padStart(12, '0').slice(-12);
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${r.slice(15)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isId(s: string): boolean {
  return UUID_RE.test(s);
}
