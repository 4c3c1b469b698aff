// The one table from error codes to HTTP statuses, and the translation of
// schema-validation failures into messages that name field, value and rule.
import type { ErrorObject } from 'ajv';
import type { ErrorCode } from '../model/errors.js';
import { show } from '../model/errors.js';
import { NO_CONTROL } from './schemas.js';

export const STATUS: Record<ErrorCode, number> = {
  E_INVALID_ARG: 400,
  E_UNAUTHENTICATED: 401,
  E_FORBIDDEN: 403,
  E_NOT_FOUND: 404,
  E_CONFLICT: 409,
  E_CAPACITY: 409,
  E_UNAVAILABLE: 503,
  E_DATAPLANE: 502,
  E_INTERNAL: 500,
};

/** `invalid body.ports[0].ipv4 5: must be string` from an Ajv error and the request part it checked. */
export function describeValidation(errs: ErrorObject[], part: string, data: unknown): { message: string; field: string } {
  const e = errs[0] as ErrorObject;
  const segs = e.instancePath.split('/').slice(1);
  let value: unknown = data;
  let field = part === 'querystring' ? '' : part;
  for (const s of segs) {
    value = (value as Record<string, unknown> | undefined)?.[s];
    field = /^\d+$/.test(s) ? `${field}[${s}]` : field ? `${field}.${s}` : s;
  }
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') {
    const f = field ? `${field}.${p.additionalProperty}` : String(p.additionalProperty);
    return { field: f, message: `unknown field ${f}` };
  }
  if (e.keyword === 'required') {
    const f = field ? `${field}.${p.missingProperty}` : String(p.missingProperty);
    return { field: f, message: `missing field ${f}` };
  }
  let rule = e.message ?? 'is not valid';
  if (e.keyword === 'pattern' && p.pattern === NO_CONTROL) rule = 'must not contain control characters';
  if (e.keyword === 'anyOf' || e.keyword === 'const' || e.keyword === 'union') {
    const alts = collectConsts(errs);
    if (alts.length > 0) rule = `must be one of ${alts.join(', ')}`;
  }
  return { field: field || part, message: `invalid ${field || part} ${show(value)}: ${rule}` };
}

function collectConsts(errs: ErrorObject[]): string[] {
  const out: string[] = [];
  for (const e of errs) {
    const c = (e.params as { allowedValue?: unknown }).allowedValue;
    if (typeof c === 'string' && !out.includes(c)) out.push(c);
  }
  return out;
}
