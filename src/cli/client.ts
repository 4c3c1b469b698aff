// The API client the CLI (and the benchmarks) use: JSON over HTTP with a
// bearer token; an error reply becomes a WeftError with the server's code.
import { type ErrorCode, WeftError } from '../model/errors.js';

export class ApiClient {
  constructor(
    readonly base: string,
    private readonly token: string | undefined,
  ) {}

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
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
      throw new WeftError('E_UNAVAILABLE', `cannot reach the API at ${this.base}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
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
