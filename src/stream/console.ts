// Serial console sessions relayed over the push stream (docs/vm-profiles.md,
// "Console"): the API's WebSocket on one side (a ConsoleSink), the
// instance's agent on the other, which attaches to the domain's console
// socket and nothing else. One session per instance (a second one takes
// over only when forced); a session ends when either side closes, when its
// agent's stream session ends, when the token that opened it is deleted,
// and when its instance is deleted or leaves the host. Pure bookkeeping: the
// StreamServer does the sending.
import { randomBytes } from 'node:crypto';
import type { LoggedChange } from '../model/changes.js';
import { WeftError } from '../model/errors.js';

/** Where a session's output goes (the API's WebSocket). */
export interface ConsoleSink {
  data(bytes: Buffer): void;
  /** The session ended, with why (the peer closes its side). */
  close(reason: string): void;
}

export interface ConsoleSession {
  readonly id: string;
  readonly instanceId: string;
  readonly hostId: string;
  readonly tokenId: string;
  readonly sink: ConsoleSink;
}

export class ConsoleRelay {
  private readonly byId = new Map<string, ConsoleSession>();
  private readonly byInstance = new Map<string, ConsoleSession>();

  /**
   * A new session for `instanceId` on `hostId`. Another open session of the
   * instance is E_CONFLICT unless `force`, which ends it ("taken over").
   */
  open(o: { instanceId: string; hostId: string; tokenId: string; force: boolean; sink: ConsoleSink }): {
    session: ConsoleSession;
    replaced: ConsoleSession | null;
  } {
    const had = this.byInstance.get(o.instanceId) ?? null;
    if (had && !o.force)
      throw new WeftError(
        'E_CONFLICT',
        `instance ${o.instanceId} already has a console session: one at a time (weft console --force takes it over)`,
        'instance',
      );
    if (had) this.end(had.id, 'taken over by another console session (--force)');
    const session: ConsoleSession = { id: randomBytes(8).toString('hex'), instanceId: o.instanceId, hostId: o.hostId, tokenId: o.tokenId, sink: o.sink };
    this.byId.set(session.id, session);
    this.byInstance.set(session.instanceId, session);
    return { session, replaced: had };
  }

  get(id: string): ConsoleSession | undefined {
    return this.byId.get(id);
  }

  /** Forgets a session and tells its sink why; returns it (undefined when it had ended already). */
  end(id: string, reason: string): ConsoleSession | undefined {
    const s = this.byId.get(id);
    if (!s) return undefined;
    this.byId.delete(id);
    if (this.byInstance.get(s.instanceId) === s) this.byInstance.delete(s.instanceId);
    s.sink.close(reason);
    return s;
  }

  /** The sessions of one host (its agent's stream session ended: they end too). */
  ofHost(hostId: string): ConsoleSession[] {
    return [...this.byId.values()].filter((s) => s.hostId === hostId);
  }

  /** What committed changes end: the sessions of a deleted token, and of an instance deleted or moved off its host. */
  ended(changes: readonly LoggedChange[]): { session: ConsoleSession; reason: string }[] {
    const out: { session: ConsoleSession; reason: string }[] = [];
    if (this.byId.size === 0) return out;
    for (const c of changes) {
      for (const s of this.byId.values()) {
        if (c.kind === 'token.deleted' && c.token.tokenId === s.tokenId) out.push({ session: s, reason: 'token revoked' });
        else if (c.kind === 'instance.deleted' && c.instance.instanceId === s.instanceId) out.push({ session: s, reason: 'instance deleted' });
        else if (c.kind === 'instance.updated' && c.instance.instanceId === s.instanceId && c.instance.hostId !== s.hostId)
          out.push({ session: s, reason: 'instance moved to another host' });
      }
    }
    return out;
  }
}
