// The API client the CLI (and the benchmarks) use: JSON over HTTP with a
// bearer token; an error reply becomes a WeftError with the server's code.
// node:http rather than fetch: fetch loads undici (with http2, tls and a wasm
// parser), some 100 ms of CPU at the start of every CLI call.
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { type ErrorCode, WeftError } from '../model/errors.js';

export interface ApiClientOptions {
  /** CA certificates (PEM) to trust for an https: API instead of the system's (`--ca-file`). */
  ca?: Buffer | undefined;
}

export class ApiClient {
  constructor(
    readonly base: string,
    private readonly token: string | undefined,
    private readonly o: ApiClientOptions = {},
  ) {}

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    // A bad header value's own error would quote the header, token and all.
    if (this.token !== undefined && this.token !== '' && !/^[\x21-\x7e]+$/.test(this.token))
      throw new WeftError('E_INVALID_ARG', 'invalid token (not shown): must be printable ASCII without spaces or line breaks', 'token');
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let res: { status: number; text: string };
    try {
      const url = new URL(path, this.base);
      // As fetch did: credentials in the URL are refused, never sent as basic auth.
      if (url.username !== '' || url.password !== '') throw new WeftError('E_INVALID_ARG', 'a URL with credentials is not supported');
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WeftError('E_INVALID_ARG', `unsupported protocol ${url.protocol} (http: or https:)`);
      res = await send(
        url,
        {
          method,
          ...(this.o.ca ? { ca: this.o.ca } : {}),
          headers: {
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
            ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
        },
        payload,
      );
    } catch (e) {
      // Messages may quote the URL (with its password) or a header: neither is shown.
      const err = e as { code?: string; message?: string };
      let why = String(err instanceof WeftError ? err.message : (tlsAdvice(err, this.o.ca !== undefined) ?? err.code ?? err.message));
      for (const secret of [this.token, urlPassword(this.base)]) if (secret) why = why.split(secret).join('***');
      throw new WeftError('E_UNAVAILABLE', `cannot reach the API at ${shownUrl(this.base)}: ${why}`);
    }
    if (res.status === 204) return undefined as T;
    const text = res.text;
    let data: unknown;
    try {
      data = text === '' ? undefined : JSON.parse(text);
    } catch {
      data = text;
    }
    if (res.status < 200 || res.status > 299) {
      const d = data as { code?: string; message?: string; field?: string } | undefined;
      throw new WeftError((d?.code as ErrorCode) ?? 'E_INTERNAL', d?.message ?? `HTTP ${res.status}: ${text.slice(0, 200)}`, d?.field);
    }
    return data as T;
  }

  get<T = unknown>(path: string) {
    return this.call<T>('GET', path);
  }
  post<T = unknown>(path: string, body?: unknown) {
    return this.call<T>('POST', path, body ?? {});
  }
  patch<T = unknown>(path: string, body: unknown) {
    return this.call<T>('PATCH', path, body);
  }
  delete(path: string) {
    return this.call<void>('DELETE', path);
  }

  /** Every item of a list, following `next` cursors. */
  async all<T = unknown>(path: string, query: Record<string, string | undefined> = {}): Promise<T[]> {
    const out: T[] = [];
    let after: string | null = null;
    for (;;) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, v);
      qs.set('limit', '1000');
      if (after) qs.set('after', after);
      const page: { items: T[]; next: string | null } = await this.get(`${path}?${qs}`);
      out.push(...page.items);
      if (!page.next) return out;
      after = page.next;
    }
  }
}

/** Certificate checks that fail because the CLI does not know the API's CA. */
const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

/** A TLS failure explained in one line with what to do, or null when `e` is not one. */
export function tlsAdvice(e: { code?: string | undefined; message?: string | undefined }, haveCa: boolean): string | null {
  const code = e.code ?? '';
  if (UNKNOWN_CA.has(code))
    return haveCa
      ? `the API's TLS certificate is not signed by the CA in --ca-file (${code}): pass the CA that signed it`
      : `the API's TLS certificate is not signed by a CA this machine trusts (${code}): pass its CA with --ca-file FILE (env WEFT_CA_FILE)`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `the API's TLS certificate does not name this host (${e.message ?? code}): use the name or address in its subjectAltName in --api, or reissue the certificate with it`;
  if (code === 'CERT_HAS_EXPIRED') return "the API's TLS certificate has expired (CERT_HAS_EXPIRED): the server needs a renewed one (--api-tls-cert)";
  if (code === 'CERT_NOT_YET_VALID') return "the API's TLS certificate is not valid yet (CERT_NOT_YET_VALID): check this machine's clock and the server's";
  if (code === 'EPROTO' && /wrong version number|packet length too long|http request/i.test(e.message ?? ''))
    return 'the API does not speak TLS there (EPROTO): use http:// in --api, or start the server with --api-tls-cert and --api-tls-key';
  return null;
}

function urlPassword(base: string): string {
  try {
    return new URL(base).password;
  } catch {
    return '';
  }
}

/** A URL as messages show it: a password in it is replaced by `***`. */
function shownUrl(base: string): string {
  const pw = urlPassword(base);
  return pw ? base.split(pw).join('***') : base;
}

/** One request; resolves with the status and the whole body once it has ended. */
async function send(url: URL, opts: RequestOptions, payload: string | undefined): Promise<{ status: number; text: string }> {
  // node:https (and tls) load only for an https: API.
  const request = url.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}
