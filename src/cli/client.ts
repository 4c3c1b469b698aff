// The API client the CLI (and the benchmarks) use: JSON over HTTP with a
// bearer token; an error reply becomes a WeftError with the server's code.
import { type ErrorCode, WeftError } from '../model/errors.js';

export class ApiClient {
  constructor(
    readonly base: string,
    private readonly token: string | undefined,
  ) {}

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    // fetch's own error for a bad header value quotes the header, token and all.
    if (this.token !== undefined && this.token !== '' && !/^[\x21-\x7e]+$/.test(this.token))
      throw new WeftError('E_INVALID_ARG', 'invalid token (not shown): must be printable ASCII without spaces or line breaks', 'token');
    let res: Response;
    try {
      res = await fetch(new URL(path, this.base), {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      // fetch's messages may quote the URL (with its password) or a header: neither is shown.
      let why = String(cause?.code ?? cause?.message ?? (e as Error).message);
      for (const secret of [this.token, urlPassword(this.base)]) if (secret) why = why.split(secret).join('***');
      throw new WeftError('E_UNAVAILABLE', `cannot reach the API at ${shownUrl(this.base)}: ${why}`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let data: unknown;
    try {
      data = text === '' ? undefined : JSON.parse(text);
    } catch {
      data = text;
    }
    if (!res.ok) {
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
