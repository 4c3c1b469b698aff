// The console's only way to the server: the REST API with the token as a
// Bearer header, and GET /v1/events read with fetch (EventSource cannot send
// the header). Every scoping decision is the API's; the page shows what it gets.
import type { components, paths } from '../src/cli/api-types.js';

export type Schemas = components['schemas'];
export type Host = Schemas['Host'];
export type Site = Schemas['Site'];
export type Rack = Schemas['Rack'];
export type Tenant = Schemas['Tenant'];
export type TenantWithUsage = Schemas['TenantWithUsage'];
export type Network = Schemas['Network'];
export type Instance = Schemas['InstanceWithPorts'];
export type Port = Schemas['Port'];
export type Vip = Schemas['Vip'];
export type Token = Schemas['Token'];
export type Change = Schemas['Change'];

/** One connected agent as GET /v1/agents and the `agents` event report it (the API's own schema). */
export type AgentStatus = paths['/v1/agents']['get']['responses'][200]['content']['application/json']['items'][number];

/** A change as the event stream carries it. */
export interface EventChange {
  version: number;
  at: string;
  kind: string;
  object: { kind: string; id: string; name: string | null };
  actor: { tokenId: string; name: string } | null;
  tenantId: string | null;
}

/** An error the API answered ({code, message}) or the network failed with, in words. */
export class ApiError {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly message: string,
  ) {}
  toString(): string {
    return this.message;
  }
}

const TOKEN_KEY = 'weft.token';

export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** Listeners told when the API says the token is no longer valid (back to the login form). */
const onUnauthenticated = new Set<() => void>();
export function whenLoggedOut(fn: () => void): () => void {
  onUnauthenticated.add(fn);
  return () => onUnauthenticated.delete(fn);
}

async function request<T>(method: string, path: string, body?: unknown, token = session.token): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${token ?? ''}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    throw new ApiError(0, 'E_NETWORK', `the server did not answer ${method} ${path}: ${(e as Error).message}`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: a proxy's page, say; its status line is all there is.
  }
  if (!res.ok) {
    const e = json as { code?: string; message?: string } | null;
    if (res.status === 401) for (const fn of onUnauthenticated) fn();
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? `${method} ${path}: HTTP ${res.status} ${res.statusText}`);
  }
  return json as T;
}

export const api = {
  get: <T>(path: string) => request<T>('GET', path),
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, body),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
  del: (path: string) => request<void>('DELETE', path),
  whoami: (token: string) => request<Token>('GET', '/v1/whoami', undefined, token),
  /** Every item of a list, following its pages. */
  async all<T extends { id: string }>(path: string): Promise<T[]> {
    const out: T[] = [];
    let after = '';
    for (;;) {
      const sep = path.includes('?') ? '&' : '?';
      const page = await request<{ items: T[]; next?: string | null }>('GET', `${path}${sep}limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      out.push(...page.items);
      if (!page.next || page.items.length === 0) return out;
      after = page.next;
    }
  },
};

export type StreamEvent =
  | { type: 'hello'; data: { head: number; role: string } }
  | { type: 'agents'; data: { head: number; items: AgentStatus[] } }
  | { type: 'change'; data: EventChange }
  | { type: 'end'; data: { reason: string } };

/**
 * Reads GET /v1/events until stopped, reconnecting with a capped backoff;
 * `state` says whether it is connected (for the header's indicator).
 */
export function followEvents(on: (e: StreamEvent) => void, state: (connected: boolean, why: string | null) => void): () => void {
  let stopped = false;
  let ctl: AbortController | null = null;
  let delay = 500;
  const run = async () => {
    while (!stopped) {
      ctl = new AbortController();
      let why: string | null = null;
      try {
        const res = await fetch('/v1/events', { headers: { authorization: `Bearer ${session.token ?? ''}` }, signal: ctl.signal });
        if (!res.ok || !res.body) {
          const e = (await res.json().catch(() => null)) as { message?: string } | null;
          if (res.status === 401) for (const fn of onUnauthenticated) fn();
          throw new Error(e?.message ?? `HTTP ${res.status}`);
        }
        state(true, null);
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) type = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length === 0) continue;
            const e = { type, data: JSON.parse(data.join('\n')) } as StreamEvent;
            if (e.type === 'end') why = e.data.reason;
            on(e);
          }
        }
        why ??= 'the server closed the event stream';
      } catch (e) {
        if (stopped) return;
        why = (e as Error).message;
      }
      state(false, why);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  void run();
  return () => {
    stopped = true;
    ctl?.abort();
  };
}
