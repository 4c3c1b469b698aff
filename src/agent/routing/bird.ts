// The BIRD seam: check a config with `bird -p`, apply it with `birdc
// configure` (optionally with BIRD's own undo timer), confirm, and read
// protocol state back; a real implementation over birdc and a fake.
import { constants } from 'node:fs';
import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import { WeftError } from '../../model/errors.js';
import { run as defaultRun, type Runner } from '../../sys/exec.js';
import { DEVICE } from './bird-conf.js';

/** One BGP session as BIRD reports it (`show protocols all`). */
export interface BgpStatus {
  /** The BIRD protocol name (`up_…`). */
  name: string;
  /** up, start, down... (BIRD's protocol state). */
  state: string;
  /** Established, Active, Connect, Idle... (BGP state), or BIRD's info text. */
  bgpState: string;
  established: boolean;
  since: string;
  neighbor: string | null;
  lastError: string | null;
  /** Per channel (ipv4, ipv6): routes imported (accepted), filtered, exported; received = imported + filtered. */
  channels: { family: 'ipv4' | 'ipv6'; imported: number; filtered: number; exported: number; receiveLimit: number | null; limitHit: boolean }[];
}

export interface Bird {
  /**
   * Checks a config with BIRD's own parser (`bird -p`); throws E_DATAPLANE
   * with BIRD's message (file:line:col reason) if BIRD refuses it. Changes nothing.
   */
  check(conf: string): Promise<void>;
  /**
   * Makes `conf` BIRD's running config. With `undoAfterS`, BIRD reverts to
   * the previous config by itself unless `confirm()` comes first (a config
   * that could cut the host off). A plain configure cancels a pending undo.
   * Throws E_DATAPLANE with BIRD's message if it refuses; the running
   * config is then unchanged.
   */
  configure(conf: string, o?: { undoAfterS?: number }): Promise<void>;
  /** Confirms the running config: a pending undo is cancelled. Idempotent. */
  confirm(): Promise<void>;
  /** The BGP sessions BIRD runs now. Throws E_DATAPLANE when BIRD cannot be reached. */
  sessions(): Promise<BgpStatus[]>;
}

export interface BirdControlOptions {
  /** BIRD's control socket (`bird -s`). */
  socket: string;
  /** Where the running config is written; BIRD is told to read it from here. */
  confPath: string;
  run?: Runner;
  /** Run `birdc`/`bird -p` inside this network namespace (tests, the lab). */
  netns?: string;
}

/** The real BIRD, over birdc and its control socket. */
export class BirdControl implements Bird {
  private readonly run: Runner;

  constructor(private readonly o: BirdControlOptions) {
    this.run = o.run ?? defaultRun;
  }

  async check(conf: string): Promise<void> {
    const tmp = `${this.o.confPath}.check`;
    await writeFile(tmp, conf);
    const r = await this.run('bird', ['-p', '-c', tmp], { netns: this.o.netns, okCodes: [1] });
    if (r.code !== 0) throw refusedError(`BIRD refused the config: ${birdMessage(r.stderr || r.stdout, tmp)}`);
  }

  async configure(conf: string, o: { undoAfterS?: number } = {}): Promise<void> {
    // BIRD 2.0.12 does not rescan interfaces when a reconfigure replaces its device protocol by another name:
    // until the next periodic scan (60 s) it knows none, so no session can start. Restart ours after taking over.
    const before = await readFile(this.o.confPath, 'utf8').catch(() => '');
    const takeOver = !before.includes(`protocol device ${DEVICE}`) && conf.includes(`protocol device ${DEVICE}`);
    // The operator's own config, the first time weft takes BIRD over, is kept beside it (never overwritten later).
    if (takeOver && before.trim() !== '') await copyFile(this.o.confPath, `${this.o.confPath}.pre-weft`, constants.COPYFILE_EXCL).catch(() => undefined);
    const next = `${this.o.confPath}.next`;
    await writeFile(next, conf);
    // BIRD reads the file again on `configure undo`, so the running config's file must not change under it: write, then rename.
    await rename(next, this.o.confPath);
    const args = ['configure', JSON.stringify(this.o.confPath)];
    if (o.undoAfterS) args.push('timeout', String(Math.max(1, Math.round(o.undoAfterS))));
    let out: string;
    try {
      out = await this.birdc(args);
    } catch (e) {
      // 8002 (and 9xxx) is BIRD's parser saying no: the running config stays; the same text will not do better.
      if (/: bird\.conf:\d+:\d+ |syntax error/.test((e as Error).message)) throw refusedError((e as Error).message);
      throw e;
    }
    // 0003 done, 0004 in progress (old protocols shutting down), 0005 queued behind a reconfiguration in progress.
    if (!/^000[345] /m.test(out)) throw new WeftError('E_DATAPLANE', `BIRD did not reconfigure: ${replyText(out)}`);
    if (takeOver) await this.birdc(['restart', DEVICE]);
  }

  async confirm(): Promise<void> {
    await this.birdc(['configure', 'confirm']);
  }

  async sessions(): Promise<BgpStatus[]> {
    return parseProtocols(await this.birdc(['show', 'protocols', 'all']));
  }

  /** Runs `birdc -v` (numbered replies); throws E_DATAPLANE with BIRD's text on an error reply or no connection. */
  private async birdc(args: string[]): Promise<string> {
    const r = await this.run('birdc', ['-v', '-s', this.o.socket, ...args], { netns: this.o.netns, okCodes: [1], timeoutMs: 10_000 });
    if (r.code !== 0 || /^[89]\d{3}[ -]/m.test(r.stdout)) {
      const why = /^[89]\d{3}[ -]/m.test(r.stdout) ? replyText(r.stdout) : (r.stderr || r.stdout).trim();
      throw new WeftError('E_DATAPLANE', `birdc ${args.join(' ')}: ${birdMessage(why, this.o.confPath)}`);
    }
    return r.stdout;
  }
}

/** An error for a config BIRD's parser refused (`refused: true`): not worth retrying until the config changes. */
function refusedError(message: string): WeftError & { refused: true } {
  return Object.assign(new WeftError('E_DATAPLANE', message), { refused: true as const });
}

/** BIRD's reply lines without their codes, the banner dropped. */
function replyText(out: string): string {
  return out
    .split('\n')
    .filter((l) => l && !/^0001 /.test(l))
    .map((l) => l.replace(/^\d{4}[ -]/, '').trim())
    .join('; ');
}

/** BIRD's message with the temp file name replaced by "line N:M" (what the operator can act on). */
function birdMessage(text: string, file: string): string {
  return text
    .trim()
    .replace(/^bird: /gm, '')
    .split(file)
    .join('bird.conf')
    .replace(/\s*\n\s*/g, '; ');
}

/**
 * Parses `birdc -v show protocols all` into the BGP sessions it lists.
 * Exported for tests; tolerant of fields BIRD omits for sessions that never came up.
 */
export function parseProtocols(out: string): BgpStatus[] {
  const lines = out.split('\n').map((l) => l.replace(/^\d{4}[ -]/, '').replace(/^ (?=\S)/, ''));
  const res: BgpStatus[] = [];
  let cur: BgpStatus | null = null;
  let chan: BgpStatus['channels'][number] | null = null;
  for (const raw of lines) {
    const head = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*)$/.exec(raw);
    if (head && !raw.startsWith(' ') && head[1] !== 'Name') {
      cur = null;
      chan = null;
      if (head[2] === 'BGP') {
        const info = (head[6] ?? '').trim();
        cur = {
          name: head[1] as string,
          state: head[4] as string,
          since: head[5] as string,
          bgpState: info.split(/\s+/)[0] || head[4] || '',
          established: false,
          neighbor: null,
          lastError: null,
          channels: [],
        };
        res.push(cur);
      }
      continue;
    }
    if (!cur) continue;
    const line = raw.trim();
    const field = (re: RegExp): string | null => re.exec(line)?.[1] ?? null;
    const bgp = field(/^BGP state:\s+(\S+)/);
    const nbr = field(/^Neighbor address:\s+(\S+)/);
    const err = field(/^Last error:\s+(.+)$/);
    const family = field(/^Channel (ipv4|ipv6)$/);
    const routes = field(/^Routes:\s+(.*)$/);
    const limit = field(/^Receive limit:\s+(\d+)/);
    if (bgp !== null) {
      cur.bgpState = bgp;
      cur.established = bgp === 'Established';
    } else if (nbr !== null) cur.neighbor = nbr;
    else if (err !== null) cur.lastError = err;
    else if (family !== null) {
      chan = { family: family as 'ipv4' | 'ipv6', imported: 0, filtered: 0, exported: 0, receiveLimit: null, limitHit: false };
      cur.channels.push(chan);
    } else if (chan && routes !== null) {
      const n = (what: string) => Number(new RegExp(`(\\d+) ${what}`).exec(routes)?.[1] ?? 0);
      chan.imported = n('imported');
      chan.filtered = n('filtered');
      chan.exported = n('exported');
    } else if (chan && limit !== null) chan.receiveLimit = Number(limit);
  }
  for (const s of res) if (s.lastError && /limit/i.test(s.lastError)) for (const c of s.channels) c.limitHit = true;
  return res;
}

/** In-memory BIRD for unit tests: keeps the running config, can refuse on demand, and models the undo timer by hand. */
export class FakeBird implements Bird {
  running = '';
  /** The config BIRD would revert to, while an undo is pending. */
  undoTo: string | null = null;
  configures: { conf: string; undoAfterS?: number }[] = [];
  confirms = 0;
  /** The next check/configure throws with this message. */
  failNext: string | null = null;
  /** Any config containing this text is refused (a standing parse error). */
  refuseContaining: string | null = null;
  /** What sessions() returns. */
  status: BgpStatus[] = [];
  /** sessions() throws (BIRD down). */
  down = false;
  /** The next N configures fail as if BIRD could not be reached (retried, unlike refusals). */
  unreachableNext = 0;

  async check(conf: string): Promise<void> {
    this.refuse(conf);
  }

  async configure(conf: string, o: { undoAfterS?: number } = {}): Promise<void> {
    if (this.unreachableNext > 0) {
      this.unreachableNext--;
      throw new WeftError('E_DATAPLANE', 'birdc configure: Unable to connect to server control socket');
    }
    this.refuse(conf);
    // As BIRD does: the undo goes one step back, and a plain configure cancels it.
    this.undoTo = o.undoAfterS ? this.running : null;
    this.running = conf;
    this.configures.push({ conf, ...(o.undoAfterS ? { undoAfterS: o.undoAfterS } : {}) });
  }

  async confirm(): Promise<void> {
    this.undoTo = null;
    this.confirms++;
  }

  /** What BIRD does when the undo timer fires unconfirmed. */
  fireUndo(): void {
    if (this.undoTo !== null) this.running = this.undoTo;
    this.undoTo = null;
  }

  async sessions(): Promise<BgpStatus[]> {
    if (this.down) throw new WeftError('E_DATAPLANE', 'birdc: Unable to connect to server control socket');
    return this.status;
  }

  private refuse(conf: string): void {
    if (this.failNext) {
      const m = this.failNext;
      this.failNext = null;
      throw refusedError(`BIRD refused the config: ${m}`);
    }
    if (this.refuseContaining && conf.includes(this.refuseContaining))
      throw refusedError(`BIRD refused the config: bird.conf:1:1 syntax error near ${this.refuseContaining}`);
  }
}
