// API tokens: random secrets shown once, stored only as SHA-256 hashes
// (the secrets carry 256 bits of entropy, so a fast hash is enough).
import { createHash, randomBytes } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import { invalid, notFound } from '../model/errors.js';
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

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export function newSecret(): string {
  return `weft_${randomBytes(32).toString('base64url')}`;
}

/** Creates a token; the secret is returned here once and never again. */
export async function createToken(ctx: Ctx, input: TokenInput, secret: string = newSecret()): Promise<{ token: Token; secret: string }> {
  v.name('name', input.name);
  const role = v.oneOf('role', input.role, ROLES);
  if ((role === 'tenant') !== (input.tenant !== undefined)) throw invalid('tenant', input.tenant ?? null, 'required for role tenant, and only for it');
  if ((role === 'agent') !== (input.host !== undefined)) throw invalid('host', input.host ?? null, 'required for role agent, and only for it');
  if (secret.length < 16) throw invalid('secret', '(hidden)', 'must be at least 16 characters');
  return ctx.store.write(async (tx) => {
    const tenantId = input.tenant === undefined ? null : (await ref.tenant(tx, input.tenant, { tenantId: null })).id;
    const hostId = input.host === undefined ? null : (await ref.host(tx, input.host)).id;
    const row: TokenRow = { ...stamp(ctx), name: input.name, role, tenantId, hostId, secretHash: hashSecret(secret) };
    await tx.insert('tokens', row);
    return { token: tokenView(row), secret };
  });
}

/** Makes sure an admin token with this secret exists (the WEFT_ADMIN_TOKEN bootstrap). Idempotent. */
export async function ensureAdminToken(ctx: Ctx, secret: string, name = 'bootstrap-admin'): Promise<Token> {
  if (secret.length < 16) throw invalid('WEFT_ADMIN_TOKEN', '(hidden)', 'must be at least 16 characters');
  return ctx.store.write(async (tx) => {
    const existing = await tx.findOne('tokens', { secretHash: hashSecret(secret) });
    if (existing) {
      if (existing.role !== 'admin') throw invalid('WEFT_ADMIN_TOKEN', '(hidden)', `is already the secret of a ${existing.role} token`);
      return tokenView(existing);
    }
    const row: TokenRow = { ...stamp(ctx), name, role: 'admin', tenantId: null, hostId: null, secretHash: hashSecret(secret) };
    await tx.insert('tokens', row);
    return tokenView(row);
  });
}

export async function authenticate(ctx: Ctx, secret: string): Promise<Token | null> {
  const row = await ctx.store.read((tx) => tx.findOne('tokens', { secretHash: hashSecret(secret) }));
  return row ? tokenView(row) : null;
}

/** Deletes a token; every replica's push stream closes the sessions it opened (the `token.deleted` entry, same transaction). */
export async function deleteToken(ctx: Ctx, id: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    if ((await removeTokens(tx, { id }, ctx.clock.now().toISOString())) === 0) throw notFound('token', id);
  });
}

/**
 * Removes the tokens matching `where` (a host's, a tenant's, one by id) and
 * logs a `token.deleted` for each, in the caller's transaction. Every token
 * removal goes through here, so none leaves a session open. Returns how many.
 */
export async function removeTokens(tx: Repo, where: { id: string } | { hostId: string } | { tenantId: string }, at: string): Promise<number> {
  const rows = await tx.all('tokens', where);
  if (rows.length === 0) return 0;
  await tx.remove('tokens', where);
  for (const r of rows.sort((a, b) => a.id.localeCompare(b.id))) await logChange(tx, { kind: 'token.deleted', token: tokenInfo(r) }, at);
  return rows.length;
}
