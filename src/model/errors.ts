// The one error type of weft: a stable machine-readable code plus a message
// that names the field, the bad value and what is allowed.

export type ErrorCode =
  | 'E_INVALID_ARG'
  | 'E_NOT_FOUND'
  | 'E_CONFLICT'
  | 'E_CAPACITY'
  /** A tenant's quota (instances, ports, networks, public IPv4 addresses, VIPs) would be exceeded. */
  | 'E_QUOTA'
  | 'E_UNAUTHENTICATED'
  | 'E_FORBIDDEN'
  | 'E_UNAVAILABLE'
  /** A listener at its connection cap. */
  | 'E_BUSY'
  | 'E_DATAPLANE'
  | 'E_INTERNAL'
  /** An HTTP request body above the API's limit. */
  | 'E_TOO_LARGE'
  /** HTTP request headers above the server's limit. */
  | 'E_HEADERS_TOO_LARGE'
  /** An HTTP request body that is not JSON. */
  | 'E_UNSUPPORTED_MEDIA_TYPE'
  /** An HTTP request that was not received in time. */
  | 'E_TIMEOUT';

/** Every code, in one list (the API's OpenAPI Error schema enumerates it); the Record makes it exhaustive. */
const CODES: Record<ErrorCode, true> = {
  E_INVALID_ARG: true,
  E_NOT_FOUND: true,
  E_CONFLICT: true,
  E_CAPACITY: true,
  E_QUOTA: true,
  E_UNAUTHENTICATED: true,
  E_FORBIDDEN: true,
  E_UNAVAILABLE: true,
  E_DATAPLANE: true,
  E_INTERNAL: true,
  E_TOO_LARGE: true,
  E_HEADERS_TOO_LARGE: true,
  E_UNSUPPORTED_MEDIA_TYPE: true,
  E_TIMEOUT: true,
  E_BUSY: true,
};
export const ERROR_CODES = Object.keys(CODES) as ErrorCode[];

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

/**
 * A value as an error message shows it: as JSON, cut to 80 characters unless
 * it is a string. Never throws, whatever it is given (a value nested too
 * deeply for JSON, a cycle, a BigInt), so no error path can fail on hostile input.
 */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return '(missing)';
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch {
    // Too deep or cyclic: name the kind only. String() would recurse (arrays) or throw (no prototype).
    s = Array.isArray(value) ? '(an array nested too deeply to show)' : '(a value that cannot be shown)';
  }
  if (s === undefined) s = `(${typeof value})`;
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
