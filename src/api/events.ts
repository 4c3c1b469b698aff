// GET /v1/events: one text/event-stream per browser (the web console) with
// the agents' status when it changes and each new change-log entry, scoped
// as the other routes are: a tenant token gets only its tenant's changes,
// without actors and without any agent or host internals.
import { PassThrough } from 'node:stream';
import type { Ctx, Scope } from '../core/context.js';
import type { ChangeItem } from '../core/queries.js';
import * as q from '../core/queries.js';
import { WeftError } from '../model/errors.js';
import type { Role } from '../model/types.js';
import type { AgentStatus } from './schemas.js';

/** How often the agents' status is compared with the last one sent (a snapshot goes only when it changed). */
export const AGENTS_EVERY_MS = 500;
/** A comment line this often keeps proxies and the API's idle timeout from closing a quiet stream. */
export const HEARTBEAT_MS = 15_000;
/** Streams one token may hold open at once (a console per tab, not per request). */
export const STREAMS_PER_TOKEN = 8;
/** Change-log entries read per wake-up; more wait for the next one. */
const CHANGES_PER_READ = 500;

/** What one stream carries: the `change` entry as a browser sees it. */
export interface EventChange {
  version: number;
  at: string;
  kind: string;
  object: ChangeItem['object'];
  /** The token that made it (null for tenant tokens: operators' token names are not theirs to read). */
  actor: ChangeItem['actor'];
  /** The tenant it belongs to (null: infrastructure, shown to operators only). */
  tenantId: string | null;
}

interface Client {
  tokenId: string;
  /** When the token stops working (ms since the epoch; null: never): its streams end then. */
  expiresAt: number | null;
  role: Role;
  scope: Scope;
  out: PassThrough;
}

/** The tenant a change belongs to, or null for infrastructure (hosts, peers, tokens). */
function tenantOf(c: ChangeItem): string | null {
  if ('port' in c) return c.port.tenantId;
  if ('network' in c) return c.network.tenantId;
  if ('vip' in c) return c.vip.tenantId;
  if ('instance' in c) return c.instance.tenantId;
  return null;
}

const frame = (event: string, data: unknown, id?: number) => `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/**
 * The fan-out behind GET /v1/events: one reader of the change log and one
 * comparer of the agents' status for all streams, started with the first
 * stream and stopped with the last. open() is refused with E_BUSY past
 * STREAMS_PER_TOKEN streams of one token; a token's streams end when the
 * log says it was deleted (on any replica), when it expires, and on close().
 */
export class EventHub {
  private readonly clients = new Set<Client>();
  private cursor = -1;
  private lastAgents = '';
  private reading: Promise<void> | null = null;
  private again = false;
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly ctx: Ctx,
    private readonly agents: () => AgentStatus[],
  ) {}

  /** Streams open now, in total. */
  get size(): number {
    return this.clients.size;
  }

  /** A new stream for this token: the first frames (a `hello` and, for operators, the agents now) are written at once. */
  async open(token: { id: string; role: Role; expiresAt: string | null }, scope: Scope): Promise<PassThrough> {
    const head = await this.ctx.store.headVersion();
    // Counted after the await, with nothing awaited until the stream is added: concurrent opens cannot both take the last place.
    const mine = [...this.clients].filter((c) => c.tokenId === token.id).length;
    if (mine >= STREAMS_PER_TOKEN)
      throw new WeftError('E_BUSY', `this token has ${mine} event streams open, the most one token may hold (${STREAMS_PER_TOKEN}): close a console tab`);
    if (this.clients.size === 0) this.start(head);
    const out = new PassThrough();
    const client: Client = { tokenId: token.id, expiresAt: token.expiresAt === null ? null : Date.parse(token.expiresAt), scope, role: token.role, out };
    this.clients.add(client);
    const drop = () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.stop();
    };
    out.on('close', drop);
    out.on('error', drop);
    out.write(frame('hello', { head, role: token.role, heartbeatMs: HEARTBEAT_MS }));
    if (this.operator(client)) out.write(frame('agents', { head, items: this.agents() }));
    return out;
  }

  /** Ends every stream (the API is closing). */
  close(): void {
    for (const c of [...this.clients]) c.out.end();
    this.stop();
  }

  private operator(c: Client): boolean {
    return c.role === 'admin' || c.role === 'readonly';
  }

  private start(head: number): void {
    this.cursor = head;
    this.lastAgents = '';
    this.unsubscribe = this.ctx.store.subscribe(() => this.wake());
    this.timers = [setInterval(() => this.sendAgents(), AGENTS_EVERY_MS), setInterval(() => this.broadcast(() => ': heartbeat\n\n'), HEARTBEAT_MS)];
    for (const t of this.timers) t.unref();
  }

  private stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private broadcast(text: (c: Client) => string | null): void {
    for (const c of this.clients) {
      const t = text(c);
      if (t !== null && !c.out.destroyed) c.out.write(t);
    }
  }

  private sendAgents(): void {
    const now = this.ctx.clock.now().getTime();
    for (const c of this.clients)
      if (c.expiresAt !== null && c.expiresAt <= now) {
        this.clients.delete(c);
        c.out.end(frame('end', { reason: 'the token of this stream expired' }));
      }
    if (this.clients.size === 0) {
      this.stop();
      return;
    }
    const items = this.agents();
    const json = JSON.stringify(items);
    if (json === this.lastAgents) return;
    this.lastAgents = json;
    const head = Math.max(this.cursor, ...items.map((a) => a.sentVersion));
    const text = frame('agents', { head, items });
    this.broadcast((c) => (this.operator(c) ? text : null));
  }

  /** A commit happened (here or on another replica): read the log past the cursor, once at a time. */
  private wake(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.readChanges()
      .catch(() => undefined)
      .finally(() => {
        this.reading = null;
        if (this.again && this.clients.size > 0) {
          this.again = false;
          this.wake();
        }
      });
  }

  private async readChanges(): Promise<void> {
    for (;;) {
      const { items } = await q.changes(this.ctx, { after: this.cursor, before: null, order: 'asc', limit: CHANGES_PER_READ });
      if (items.length === 0) return;
      for (const c of items) this.deliver(c);
      this.cursor = (items[items.length - 1] as ChangeItem).version;
      if (items.length < CHANGES_PER_READ) return;
    }
  }

  private deliver(c: ChangeItem): void {
    const tenantId = tenantOf(c);
    const entry: EventChange = { version: c.version, at: c.at, kind: c.kind, object: c.object, actor: c.actor, tenantId };
    const full = frame('change', entry, c.version);
    const scoped = frame('change', { ...entry, actor: null }, c.version);
    for (const client of [...this.clients]) {
      if (c.kind === 'token.deleted' && c.token.tokenId === client.tokenId) {
        client.out.end(frame('end', { reason: 'the token of this stream was deleted' }));
        continue;
      }
      const own = client.scope.tenantId;
      if (own === null) client.out.write(full);
      else if (tenantId === own) client.out.write(scoped);
    }
  }
}
