// The one table from error codes to HTTP statuses, the translation of
// schema-validation failures into messages that name field, value and rule,
// and of every other error (Fastify's FST_ERR_*, Node's HTTP parser's) into
// the API's one error body {code, message, field?}.
import { STATUS_CODES } from 'node:http';
import type { ErrorObject } from 'ajv';
import type { ErrorCode } from '../model/errors.js';
import { show, WeftError } from '../model/errors.js';
import { NO_CONTROL } from './schemas.js';

export const STATUS: Record<ErrorCode, number> = {
  E_INVALID_ARG: 400,
  E_UNAUTHENTICATED: 401,
  E_FORBIDDEN: 403,
  E_NOT_FOUND: 404,
  E_CONFLICT: 409,
  E_CAPACITY: 409,
  // 403, not 409 (E_CAPACITY: the cloud is full) nor 429 (retry later): the
  // request is refused by a policy on the caller, and stays refused until an
  // operator raises the quota or the tenant frees something.
  E_QUOTA: 403,
  E_UNAVAILABLE: 503,
  E_BUSY: 503,
  E_DATAPLANE: 502,
  E_INTERNAL: 500,
  E_TOO_LARGE: 413,
  E_HEADERS_TOO_LARGE: 431,
  E_UNSUPPORTED_MEDIA_TYPE: 415,
  E_TIMEOUT: 408,
};

/** The largest request body the API reads, in bytes. */
export const BODY_LIMIT = 1024 * 1024;

/** The body of every error the API answers. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  field?: string;
}

/**
 * Fastify's and Node's HTTP errors by their code, with the message the API
 * gives for them (Fastify's own, when absent). Their status is the code's in
 * STATUS, like every other error's.
 */
const FRAMEWORK: Record<string, { code: ErrorCode; message?: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'E_INVALID_ARG', message: 'invalid body: must be JSON without __proto__ or constructor keys' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'E_INVALID_ARG', message: 'invalid body (empty): content-type is application/json, so the body must be JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'E_INVALID_ARG', message: 'invalid body: its size does not match Content-Length' },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'E_TOO_LARGE', message: `request body too large: at most ${BODY_LIMIT} bytes` },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'E_UNSUPPORTED_MEDIA_TYPE', message: 'unsupported media type: request bodies must be application/json' },
  FST_ERR_BAD_URL: { code: 'E_INVALID_ARG', message: 'invalid URL: not valid percent-encoding' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'E_INVALID_ARG', message: 'invalid URL: a path parameter is longer than allowed' },
  FST_ERR_NOT_FOUND: { code: 'E_NOT_FOUND', message: 'no such route' },
  FST_ERR_ASYNC_CONSTRAINT: { code: 'E_INTERNAL' },
  // Node's HTTP server (the 'clientError' event): malformed requests, time-outs.
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'E_TIMEOUT', message: 'request timeout: the request was not received in time' },
  HPE_HEADER_OVERFLOW: { code: 'E_HEADERS_TOO_LARGE', message: 'request headers too large' },
  HPE_INVALID_METHOD: { code: 'E_INVALID_ARG', message: 'invalid request: unknown HTTP method' },
  // Any other HPE_* (a bad Content-Length, Transfer-Encoding, URL, version...) is E_INVALID_ARG with the parser's reason.
};

/** The code for a status no entry names: the first code with that status, else E_INVALID_ARG (4xx) or E_INTERNAL. */
function codeForStatus(status: number | undefined): ErrorCode {
  if (status !== undefined) for (const [code, s] of Object.entries(STATUS)) if (s === status) return code as ErrorCode;
  return status !== undefined && status >= 400 && status < 500 ? 'E_INVALID_ARG' : 'E_INTERNAL';
}

/** Message text from an error: one line, printable, at most 200 characters. */
function clip(s: unknown): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
  const t = (typeof s === 'string' ? s : '').replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return t.length > 200 ? `${t.slice(0, 197)}...` : t;
}

export interface Answer {
  status: number;
  body: ErrorBody;
  /** An error the API did not expect: logged, and answered without its details. */
  internal: boolean;
}

/**
 * The status and body for any error, schema-validation failures excepted.
 * Never throws: a hostile request (a 10,000-level body, a bad URL) gets its
 * {code, message} like any other.
 */
export function answerFor(err: unknown, requestId = '?'): Answer {
  try {
    if (err instanceof WeftError) {
      return { status: STATUS[err.code] ?? 500, body: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) }, internal: false };
    }
    const e = (err ?? {}) as { code?: unknown; statusCode?: unknown; message?: unknown };
    const fw = typeof e.code === 'string' ? FRAMEWORK[e.code] : undefined;
    if (fw)
      return { status: STATUS[fw.code], body: { code: fw.code, message: fw.message ?? `request: ${clip(e.message)}` }, internal: fw.code === 'E_INTERNAL' };
    if (typeof e.code === 'string' && e.code.startsWith('HPE_')) {
      const reason = (err as { reason?: unknown }).reason;
      return { status: STATUS.E_INVALID_ARG, body: { code: 'E_INVALID_ARG', message: `invalid request: ${clip(reason ?? e.message)}` }, internal: false };
    }
    // PostgreSQL refuses NUL in text (22021); the schemas already reject control
    // characters, this keeps any path that slips through a 400, not a 500.
    if (e.code === '22021' || e.code === '22P05') {
      return { status: 400, body: { code: 'E_INVALID_ARG', message: 'request: text must not contain NUL or other control characters' }, internal: false };
    }
    const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
    if (status !== undefined && status >= 400 && status < 500) {
      const code = codeForStatus(status);
      return { status: STATUS[code], body: { code, message: `request: ${clip(e.message)}` }, internal: false };
    }
  } catch {
    // fall through: an error whose properties throw is answered as internal
  }
  return { status: 500, body: { code: 'E_INTERNAL', message: `internal error (request ${clip(requestId)}); see the server log` }, internal: true };
}

/** A raw HTTP/1.1 error response for the socket-level errors Node reports before Fastify sees a request. */
export function rawAnswer(err: unknown): string {
  // Whatever Node reports on a client's socket is that client's error, as Node's own handler answers it.
  let a = answerFor(err);
  if (a.internal) a = { status: STATUS.E_INVALID_ARG, body: { code: 'E_INVALID_ARG', message: 'invalid request' }, internal: false };
  const json = JSON.stringify(a.body);
  return `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`;
}

/** `invalid body.ports[0].ipv4 5: must be string` from an Ajv error and the request part it checked. */
export function describeValidation(errs: ErrorObject[], part: string, data: unknown): { message: string; field: string } {
  const e = errs[0];
  if (!e) return { field: part, message: `invalid ${part}` };
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
