// API tokens: random secrets shown once. The store keeps no secret and no
// plain hash of one: each row has its own random salt and the HMAC-SHA256,
// keyed by that salt, of the secret's SHA-256 (so a database dump gives
// nothing to precompute against), plus the first 12 hex digits of that
// SHA-256 as an indexed lookup key. Secrets weft makes carry 256 bits;
// supplied ones (WEFT_ADMIN_TOKEN) must carry at least 128, so a fast hash
// is enough: nobody can guess their way through 2^128.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import type { ChangeActor } from '../model/changes.js';
import { invalid, WeftError } from '../model/errors.js';
import type * as I from '../model/inputs.js';
import { ROLES, type Token } from '../model/types.js';
import * as v from '../model/validate.js';
import { tokenInfo } from '../store/records.js';
import type { Repo } from '../store/repo.js';
import type { TokenRow } from '../store/schema.js';
import { logChange } from './changelog.js';
import { type Ctx, stamp } from './context.js';
import * as ref from './resolve.js';
import { tokenView } from './views.js';

export type TokenInput = Static<typeof I.TokenCreate>;

/** The SHA-256 of a secret, hex: what 0001-0008 stored, and the HMAC's input now. */
export const sha256Hex = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** Hex digits of the SHA-256 kept as the lookup key: 48 bits find the row, and tell nothing about a 128-bit secret. */
export const LOOKUP_HEX = 12;

/** The stored hash of a secret under a row's salt (hex). */
export function saltedHash(salt: string, secret: string): string {
  return hashOfSha(salt, sha256Hex(secret));
}

/** The same, from the secret's SHA-256 (the 0009 migration has only that for old rows). */
export function hashOfSha(salt: string, sha: string): string {
  return createHmac('sha256', Buffer.from(salt, 'hex')).update(sha).digest('hex');
}

/** The columns a row stores for a secret: a fresh salt, the salted hash, the lookup key. */
export function secretColumns(secret: string): Pick<TokenRow, 'salt' | 'secretHash' | 'lookup'> {
  const salt = randomBytes(16).toString('hex');
  const sha = sha256Hex(secret);
  return { salt, secretHash: hashOfSha(salt, sha), lookup: sha.slice(0, LOOKUP_HEX) };
}

export function newSecret(): string {
  return `weft_${randomBytes(32).toString('base64url')}`;
}

/**
 * A rough strength estimate of a supplied secret, in bits: its length times
 * log2 of the alphabet its character classes span. It catches short and
 * trivial secrets ("aaaa...", "admin"), not a long guessable phrase: make
 * secrets with `openssl rand -hex 16` (128 bits) or longer.
 */
export function secretBits(secret: string): number {
  let alphabet = 0;
  if (/[0-9]/.test(secret)) alphabet += 10;
  if (/[a-z]/.test(secret)) alphabet += 26;
  if (/[A-Z]/.test(secret)) alphabet += 26;
  if (/[^0-9a-zA-Z]/.test(secret)) alphabet += 32;
  if (new Set(secret).size < 12) return Math.min(secret.length, new Set(secret).size * 4);
  return Math.floor(secret.length * Math.log2(Math.max(alphabet, 2)));
}

export const MIN_SECRET_BITS = 128;

/** Refuses a supplied secret with less than 128 bits of randomness (by the estimate above). */
export function checkSecret(field: string, secret: string): void {
  if (secretBits(secret) < MIN_SECRET_BITS)
    throw invalid(
      field,
      '(hidden)',
      `must carry at least ${MIN_SECRET_BITS} bits of randomness: 32 or more hex digits, or 22 or more random letters and digits, ` +
        'with at least 12 different characters (make one with: openssl rand -hex 16)',
    );
}

/** An ISO 8601 time in the future, or null. */
function expiry(ctx: Ctx, value: string | undefined): string | null {
  if (value === undefined) return null;
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(t))
    throw invalid('expiresAt', value, 'must be an ISO 8601 time with a date and a time, e.g. 2027-01-31T00:00:00Z');
  if (t <= ctx.clock.now().getTime()) throw invalid('expiresAt', value, 'must be in the future');
  return new Date(t).toISOString();
}

/** Creates a token; the secret is returned here once and never again. */
export async function createToken(ctx: Ctx, input: TokenInput, secret?: string): Promise<{ token: Token; secret: string }> {
  v.name('name', input.name);
  const role = v.oneOf('role', input.role, ROLES);
  if ((role === 'tenant') !== (input.tenant !== undefined)) throw invalid('tenant', input.tenant ?? null, 'required for role tenant, and only for it');
  if ((role === 'agent') !== (input.host !== undefined)) throw invalid('host', input.host ?? null, 'required for role agent, and only for it');
  if (secret === undefined) secret = newSecret();
  else checkSecret('secret', secret);
  const expiresAt = expiry(ctx, input.expiresAt);
  const s = secret;
  return ctx.store.write(async (tx) => {
    const tenantId = input.tenant === undefined ? null : (await ref.tenant(tx, input.tenant, { tenantId: null })).id;
    const hostId = input.host === undefined ? null : (await ref.host(tx, input.host)).id;
    const row: TokenRow = { ...stamp(ctx), name: input.name, role, tenantId, hostId, ...secretColumns(s), expiresAt, lastUsedAt: null };
    await tx.insert('tokens', row);
    return { token: tokenView(row), secret: s };
  });
}

/** The row whose secret this is, or undefined: the lookup key finds the candidates, the salted hash (compared in constant time) picks. */
async function rowOf(tx: Repo, secret: string): Promise<TokenRow | undefined> {
  const sha = sha256Hex(secret);
  for (const r of await tx.all('tokens', { lookup: sha.slice(0, LOOKUP_HEX) })) {
    const want = Buffer.from(r.secretHash, 'hex');
    const got = Buffer.from(hashOfSha(r.salt, sha), 'hex');
    if (want.length === got.length && timingSafeEqual(want, got)) return r;
  }
  return undefined;
}

/** Makes sure an admin token with this secret exists (the WEFT_ADMIN_TOKEN bootstrap). Idempotent. */
export async function ensureAdminToken(ctx: Ctx, secret: string, name = 'bootstrap-admin'): Promise<Token> {
  checkSecret('WEFT_ADMIN_TOKEN', secret);
  return ctx.store.write(async (tx) => {
    const existing = await rowOf(tx, secret);
    if (existing) {
      if (existing.role !== 'admin') throw invalid('WEFT_ADMIN_TOKEN', '(hidden)', `is already the secret of a ${existing.role} token`);
      return tokenView(existing);
    }
    const row: TokenRow = { ...stamp(ctx), name, role: 'admin', tenantId: null, hostId: null, ...secretColumns(secret), expiresAt: null, lastUsedAt: null };
    await tx.insert('tokens', row);
    return tokenView(row);
  });
}

/** How stale a token's lastUsedAt may get before a use writes it again: a use costs a write at most once a minute per token. */
export const LAST_USED_EVERY_MS = 60_000;

/**
 * The token whose secret this is, or null (unknown or revoked). An expired
 * token is refused with E_UNAUTHENTICATED saying so; a use records
 * lastUsedAt when the recorded one is older than a minute. Throws otherwise
 * only when the store fails.
 */
export async function authenticate(ctx: Ctx, secret: string): Promise<Token | null> {
  const row = await ctx.store.read((tx) => rowOf(tx, secret));
  if (!row) return null;
  const now = ctx.clock.now();
  if (row.expiresAt !== null && Date.parse(row.expiresAt) <= now.getTime())
    throw new WeftError('E_UNAUTHENTICATED', `token ${row.name} expired at ${row.expiresAt}: make a new one (weft token create)`);
  if (row.lastUsedAt === null || now.getTime() - Date.parse(row.lastUsedAt) >= LAST_USED_EVERY_MS) {
    const at = now.toISOString();
    // Advisory: a use the store cannot record still authenticates (the request's own work will meet the store's trouble).
    await ctx.store.write((tx) => tx.update('tokens', row.id, { lastUsedAt: at })).catch(() => undefined);
    row.lastUsedAt = at;
  }
  return tokenView(row);
}

/**
 * Deletes a token, by id or name; every replica's push stream closes the
 * sessions it opened (the `token.deleted` entry, same transaction). Returns its id.
 */
export async function deleteToken(ctx: Ctx, idOrName: string): Promise<string> {
  return ctx.store.write(async (tx) => {
    const { id } = await ref.token(tx, idOrName);
    await removeTokens(tx, { id }, ctx.clock.now().toISOString(), ctx.actor);
    return id;
  });
}

/**
 * Removes the tokens matching `where` (a host's, a tenant's, one by id) and
 * logs a `token.deleted` for each, in the caller's transaction. Every token
 * removal goes through here, so none leaves a session open. Returns how many.
 */
export async function removeTokens(
  tx: Repo,
  where: { id: string } | { hostId: string } | { tenantId: string },
  at: string,
  actor: ChangeActor | null,
): Promise<number> {
  const rows = await tx.all('tokens', where);
  if (rows.length === 0) return 0;
  await tx.remove('tokens', where);
  for (const r of rows.sort((a, b) => a.id.localeCompare(b.id))) await logChange(tx, { kind: 'token.deleted', token: tokenInfo(r) }, at, actor);
  return rows.length;
}
