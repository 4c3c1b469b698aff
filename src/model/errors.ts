// The one error type of weft: a stable machine-readable code plus a message
// that names the field, the bad value and what is allowed.

export type ErrorCode =
  | 'E_INVALID_ARG'
  | 'E_NOT_FOUND'
  | 'E_CONFLICT'
  | 'E_CAPACITY'
  | 'E_UNAUTHENTICATED'
  | 'E_FORBIDDEN'
  | 'E_UNAVAILABLE'
  | 'E_DATAPLANE'
  | 'E_INTERNAL';

export class WeftError extends Error {
  readonly code: ErrorCode;
  /** The offending field, when there is one (dotted path, e.g. `ports[0].ipv4`). */
  readonly field: string | undefined;

  /** `options.cause`: the error this one wraps, when there is one. */
  constructor(code: ErrorCode, message: string, field?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WeftError';
    this.code = code;
    this.field = field;
  }
}

/** `invalid <field> <value>: <allowed>` — the house format for bad input. */
export function invalid(field: string, value: unknown, allowed: string): WeftError {
  return new WeftError('E_INVALID_ARG', `invalid ${field} ${show(value)}: ${allowed}`, field);
}

export function notFound(what: string, ref: string): WeftError {
  return new WeftError('E_NOT_FOUND', `${what} ${show(ref)} not found`);
}

export function conflict(message: string, field?: string): WeftError {
  return new WeftError('E_CONFLICT', message, field);
}

export function capacity(message: string, field?: string): WeftError {
  return new WeftError('E_CAPACITY', message, field);
}

export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return '(missing)';
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(value);
  }
}
