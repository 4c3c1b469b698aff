// What the API's OpenAPI document says beyond each route's own schema: an
// operationId for every operation and the Error body on each 4xx/5xx it can
// answer, added as routes are declared (app.ts registers documentRoute).
import { Type as T } from '@sinclair/typebox';

/** A 204's (empty) body in the spec. */
export const NO_CONTENT = T.Null({ description: 'Done; no body' });

/** What each error status means, for the spec; the body is always the Error schema. */
const ERROR_RESPONSES: Record<number, string> = {
  400: 'Invalid request (E_INVALID_ARG): the message names the field, the value and what is allowed',
  401: 'No bearer token, or an unknown or revoked one (E_UNAUTHENTICATED)',
  403: "The token's role may not do this (E_FORBIDDEN), or a tenant quota is reached (E_QUOTA)",
  404: 'No such object or route (E_NOT_FOUND)',
  409: 'Conflicts with what exists (E_CONFLICT), or no capacity left (E_CAPACITY)',
  413: 'Request body above the limit (E_TOO_LARGE)',
  415: 'Request body not application/json (E_UNSUPPORTED_MEDIA_TYPE)',
  500: 'Unexpected server error (E_INTERNAL), with the request id',
  503: 'The store is unavailable (E_UNAVAILABLE)',
};

/** `GET /v1/instances/:id/migrate` -> the operation's id (listInstances, getInstance, migrateInstance...). */
export function operationIdFor(method: string, url: string): string {
  const parts = url.replace(/^\/v1\//, '').split('/');
  const collection = parts[0] ?? '';
  const camel = (s: string) => s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  const singular = (s: string) => camel(s.endsWith('ies') ? `${s.slice(0, -3)}y` : s.endsWith('s') ? s.slice(0, -1) : s);
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const action = parts.length === 3 ? parts[2] : undefined;
  if (action) return `${camel(action)}${cap(singular(collection))}`;
  const byId = parts.length === 2;
  switch (method) {
    case 'GET':
      return byId ? `get${cap(singular(collection))}` : collection === 'whoami' ? 'whoami' : `list${cap(camel(collection))}`;
    case 'POST':
      return `create${cap(singular(collection))}`;
    case 'PATCH':
      return `update${cap(singular(collection))}`;
    case 'DELETE':
      return `delete${cap(singular(collection))}`;
    default:
      return `${method.toLowerCase()}${cap(camel(collection))}`;
  }
}

/**
 * Completes a documented route's schema for the spec: its operationId and an
 * Error response for each status it can answer with (auth ones only where a
 * token is needed, 409 on writes, 413 and 415 where a body is read).
 */
export function documentRoute(route: { method: string | string[]; url: string; schema?: object; config?: unknown }): void {
  const schema = route.schema as Record<string, unknown> | undefined;
  if (!schema || schema.hide) return;
  const method = Array.isArray(route.method) ? (route.method[0] as string) : route.method;
  schema.operationId ??= operationIdFor(method, route.url);
  schema.response ??= {};
  const response = schema.response as Record<string, unknown>;
  const write = method !== 'GET' && method !== 'HEAD';
  const statuses = [400, 404, 500, 503];
  if ((route.config as { perm?: string } | undefined)?.perm) statuses.push(401, 403);
  if (write) statuses.push(409);
  if (method === 'POST' || method === 'PATCH' || method === 'PUT') statuses.push(413, 415);
  for (const s of statuses.sort()) response[s] ??= T.Ref('Error', { description: ERROR_RESPONSES[s] });
}
