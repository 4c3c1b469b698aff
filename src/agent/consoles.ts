// The agent's end of serial console sessions (stream/console.ts): for a
// console.open of one of its own instances it connects to that domain's
// console socket, <vm-dir>/instances/<id>/console.sock, and relays bytes
// both ways over the push stream. It opens nothing else: no path comes from
// the server (only an instance id, which must be a local instance's), and
// no shell or process is started on the hypervisor.
import { createConnection, type Socket } from 'node:net';
import type { InstanceInfo } from '../model/changes.js';
import { isId } from '../model/ids.js';
import { instanceDir } from '../model/profile.js';
import { type AgentMessage, CONSOLE_CHUNK, type ServerMessage } from '../stream/protocol.js';
import { type Log, quietLog } from '../sys/log.js';
import { CONSOLE_SOCKET } from './vm/seed.js';

type Out = Extract<AgentMessage, { t: 'console.data' | 'console.close' }>;
type In = Extract<ServerMessage, { t: 'console.open' | 'console.data' | 'console.close' }>;

/** At most this many console sessions at once on one host (each holds a socket). */
export const MAX_CONSOLES = 64;

export class Consoles {
  private readonly open = new Map<string, Socket>();
  private readonly log: Log;

  constructor(
    private readonly o: {
      dir: string;
      /** The host's instances now (the agent's state) and its id: only a local instance's console is opened. */
      instances: () => ReadonlyMap<string, InstanceInfo>;
      hostId: () => string;
      send: (m: Out) => boolean;
      log?: Log;
    },
  ) {
    this.log = o.log ?? quietLog;
  }

  handle(m: In): void {
    if (m.t === 'console.open') this.attach(m.session, m.instanceId);
    else if (m.t === 'console.data') this.open.get(m.session)?.write(Buffer.from(m.data, 'base64'));
    else this.detach(m.session);
  }

  private attach(session: string, instanceId: string): void {
    const refuse = (reason: string) => {
      this.o.send({ t: 'console.close', session, reason });
      this.log.info('console refused', { instance: instanceId, reason });
    };
    const inst = this.o.instances().get(instanceId);
    if (!isId(instanceId) || !inst || inst.hostId !== this.o.hostId()) {
      refuse(`instance ${instanceId} is not on this host`);
      return;
    }
    if (this.open.size >= MAX_CONSOLES) {
      refuse(`this host has ${MAX_CONSOLES} console sessions open, the most it takes`);
      return;
    }
    this.detach(session);
    const path = `${instanceDir(this.o.dir, instanceId)}/${CONSOLE_SOCKET}`;
    const sock = createConnection(path);
    this.open.set(session, sock);
    let connected = false;
    sock.on('connect', () => {
      connected = true;
      this.log.info('console attached', { instance: instanceId, session });
    });
    sock.on('data', (b: Buffer) => {
      for (let i = 0; i < b.length; i += CONSOLE_CHUNK) this.o.send({ t: 'console.data', session, data: b.subarray(i, i + CONSOLE_CHUNK).toString('base64') });
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (this.open.get(session) !== sock) return;
      this.open.delete(session);
      this.o.send({
        t: 'console.close',
        session,
        reason: connected
          ? `console connection failed: ${e.code ?? e.message}`
          : `no console for instance ${inst.name}: ${e.code ?? e.message} (is its VM running?)`,
      });
    });
    sock.on('close', () => {
      if (this.open.get(session) !== sock) return;
      this.open.delete(session);
      this.o.send({ t: 'console.close', session, reason: 'the console closed' });
    });
  }

  private detach(session: string): void {
    const s = this.open.get(session);
    if (!s) return;
    this.open.delete(session);
    s.destroy();
  }

  /** The stream went away: every session is over (the server ended them too). */
  closeAll(): void {
    for (const s of [...this.open.keys()]) this.detach(s);
  }

  get size(): number {
    return this.open.size;
  }
}
