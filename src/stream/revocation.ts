// Which push-stream sessions committed changes end (pure): every session
// opened with a deleted token, and the session of a deleted host.
import type { LoggedChange } from '../model/changes.js';

export type RevokeReason = 'token' | 'host';

/** The `error` message a revoked session gets before it is closed (code E_UNAUTHENTICATED). */
export const REVOKED_MESSAGE: Record<RevokeReason, string> = { token: 'token revoked', host: 'host deleted' };

/** Tokens and hosts deleted by some changes, with the version of each deletion. */
export interface Revocations {
  tokens: Map<string, number>;
  hosts: Map<string, number>;
}

/** The deletions among `changes`; null when there are none (the common case costs one pass and no allocation). */
export function revocationsIn(changes: readonly LoggedChange[]): Revocations | null {
  let r: Revocations | null = null;
  for (const c of changes) {
    if (c.kind !== 'token.deleted' && c.kind !== 'host.deleted') continue;
    r ??= { tokens: new Map(), hosts: new Map() };
    if (c.kind === 'token.deleted') r.tokens.set(c.token.tokenId, c.version);
    else r.hosts.set(c.host.hostId, c.version);
  }
  return r;
}

/**
 * Why a session that authenticated with `tokenId` for `hostId` is revoked by
 * `r`, counting only deletions after version `since`; null when it is not.
 * A host's deletion removes its tokens in the same transaction: the host is
 * the reason then.
 */
export function revokedBy(r: Revocations, tokenId: string, hostId: string, since = 0): RevokeReason | null {
  if ((r.hosts.get(hostId) ?? -1) > since) return 'host';
  if ((r.tokens.get(tokenId) ?? -1) > since) return 'token';
  return null;
}

/** Adds `more` to `into` (keeping each id's latest version). */
export function mergeRevocations(into: Revocations, more: Revocations): void {
  for (const [id, v] of more.tokens) into.tokens.set(id, Math.max(v, into.tokens.get(id) ?? 0));
  for (const [id, v] of more.hosts) into.hosts.set(id, Math.max(v, into.hosts.get(id) ?? 0));
}
