// The record of what each lab made (namespaces, root-namespace links,
// processes, files), one JSON file per lab, written before the objects are
// made, so `destroyLab` and `reapStale` remove everything, also after a crash.
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { capacity, conflict, show, WeftError } from '../model/errors.js';
import { SLOTS } from './plan.js';

/** A process, told apart from a later one reusing its pid by its start time (`/proc/<pid>/stat` field 22). */
export interface ProcRef {
  pid: number;
  /** Absent in hand-written records: then any live process with the pid matches. */
  start?: string;
}

/** What a lab made, as stored in `<dir>/<name>.json`. */
export interface LabRecord {
  version: 1;
  name: string;
  /** The process that owns the lab; when it is gone, the lab is stale. */
  owner: ProcRef;
  /** The management slot (0..SLOTS-1) the lab holds, once claimed. */
  slot: number | null;
  /** Named network namespaces (`ip netns`); deleting them removes every device inside. */
  namespaces: string[];
  /** Links in the root namespace. */
  links: string[];
  /** Processes to kill (besides every process found inside the namespaces). */
  pids: ProcRef[];
  /** Files and directories to remove (recursively). */
  files: string[];
}

const NETNS_DIR = '/run/netns';

/** The state directory: `$WEFT_LAB_DIR`, or `/run/weft/lab`. */
export function labDir(): string {
  return process.env['WEFT_LAB_DIR'] || '/run/weft/lab';
}

/** The record file of lab `name`. */
export const labFile = (name: string, dir = labDir()): string => join(dir, `${name}.json`);

/** The file holding management slot `slot`; its content is the name of the lab holding it. */
const slotFile = (slot: number, dir: string): string => join(dir, `slot-${slot}`);

/** The state and start time of a process, or null when there is no such process. */
function procStat(pid: number): { state: string; start: string } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '?', start: f[19] ?? '' };
  } catch {
    return null;
  }
}

/** A reference to running process `pid`, or null when it is not running. */
export function procRef(pid: number): ProcRef | null {
  const st = procStat(pid);
  return st ? { pid, start: st.start } : null;
}

/** Whether the process is still running (zombies count as gone) and is the one recorded, not a later one with its pid. */
export function isAlive(ref: ProcRef): boolean {
  const st = procStat(ref.pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X' && (ref.start === undefined || ref.start === st.start);
}

/** Creates `path` with `content` only if it does not exist, atomically and never half-written. Returns false if it existed. */
function createExclusive(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    unlinkSync(tmp);
  }
}

/** Replaces `path` atomically. */
function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** The record of lab `name`, or null when there is none. Throws E_INTERNAL on a file that is not a lab record. */
export function readLab(name: string, dir = labDir()): LabRecord | null {
  const path = labFile(name, dir);
  const text = readText(path);
  if (text === null) return null;
  let r: Partial<LabRecord>;
  try {
    r = JSON.parse(text);
  } catch (e) {
    throw new WeftError('E_INTERNAL', `lab record ${path} is not JSON (${(e as Error).message}): remove the lab's objects by hand, then the file`);
  }
  if (typeof r.owner?.pid !== 'number') throw new WeftError('E_INTERNAL', `lab record ${path} has no owner pid`);
  return {
    version: 1,
    name,
    owner: r.owner,
    slot: typeof r.slot === 'number' ? r.slot : null,
    namespaces: r.namespaces ?? [],
    links: r.links ?? [],
    pids: r.pids ?? [],
    files: r.files ?? [],
  };
}

/** The names of all recorded labs. */
export function listLabs(dir = labDir()): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Pids of the processes whose network namespace is one of `namespaces` (what `ip netns pids` lists), in one pass over /proc. */
function pidsInNamespaces(namespaces: string[]): number[] {
  const inodes = new Set<string>();
  for (const ns of namespaces) {
    try {
      inodes.add(`net:[${statSync(join(NETNS_DIR, ns)).ino}]`);
    } catch {
      // already gone
    }
  }
  if (inodes.size === 0) return [];
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (inodes.has(readlinkSync(`/proc/${e}/ns/net`))) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Removes everything lab `name` recorded, in this order: SIGKILL to each
 * recorded process still running (and the same one: start time checked) and
 * to every process inside its namespaces, waiting up to 2 s for them to go;
 * deletes its namespaces (and so every device in them) and its root links;
 * removes its files; then its slot and its record. Works whoever owns the
 * lab (`weft lab down` of a running lab). Synchronous, so it can run
 * in a process's `exit` handler. Idempotent: objects already gone are
 * skipped, and a lab without a record is a no-op. Throws E_DATAPLANE naming
 * what could not be removed; the record is then kept, so a later call (or
 * `reapStale`) retries.
 */
export function destroyLab(name: string, dir = labDir()): void {
  const rec = readLab(name, dir);
  if (rec) teardown(rec);
  releaseSlots(name, dir);
  rmSync(labFile(name, dir), { force: true });
}

function teardown(rec: LabRecord): void {
  const victims = new Set<number>();
  for (const ref of rec.pids) if (isAlive(ref)) victims.add(ref.pid);
  for (const pid of pidsInNamespaces(rec.namespaces)) victims.add(pid);
  victims.delete(process.pid);
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  const deadline = Date.now() + 2000;
  while ([...victims].some((pid) => isAlive({ pid })) && Date.now() < deadline) sleepSync(5);

  const lines = [
    ...rec.namespaces.filter((ns) => existsSync(join(NETNS_DIR, ns))).map((ns) => `netns del ${ns}`),
    ...rec.links.filter(rootLinkExists).map((l) => `link del ${l}`),
  ];
  // -force: go on past a failing line; what is left is found below.
  if (lines.length > 0) spawnSync('ip', ['-force', '-batch', '-'], { input: `${lines.join('\n')}\n`, encoding: 'utf8' });

  const left: string[] = [];
  for (const f of rec.files) {
    try {
      rmSync(f, { recursive: true, force: true });
    } catch (e) {
      left.push(`file ${f} (${(e as Error).message})`);
    }
  }
  left.push(...rec.namespaces.filter((ns) => existsSync(join(NETNS_DIR, ns))).map((ns) => `namespace ${ns}`));
  left.push(...rec.links.filter(rootLinkExists).map((l) => `link ${l}`));
  const alive = [...victims].filter((pid) => isAlive({ pid }));
  if (alive.length > 0) left.push(`processes ${alive.join(', ')}`);
  if (left.length > 0) throw new WeftError('E_DATAPLANE', `lab ${show(rec.name)}: could not remove ${left.join('; ')}`);
}

const rootLinkExists = (name: string): boolean => existsSync(`/sys/class/net/${name}`);

/** Removes the slot files that name lab `name`. */
function releaseSlots(name: string, dir: string): void {
  for (let s = 0; s < SLOTS; s++) if (readText(slotFile(s, dir))?.trim() === name) rmSync(slotFile(s, dir), { force: true });
}

/**
 * Destroys every lab whose owner process is gone (crashed, or exited without
 * destroying it). Tries all of them, then throws E_DATAPLANE naming those it
 * could not remove. Returns the names of the labs destroyed.
 */
export function reapStale(dir = labDir()): string[] {
  const reaped: string[] = [];
  const failed: string[] = [];
  for (const name of listLabs(dir)) {
    try {
      const rec = readLab(name, dir);
      if (!rec || isAlive(rec.owner)) continue;
      destroyLab(name, dir);
      reaped.push(name);
    } catch (e) {
      failed.push((e as Error).message);
    }
  }
  if (failed.length > 0) throw new WeftError('E_DATAPLANE', `stale labs left behind: ${failed.join(' | ')}`);
  return reaped;
}

/**
 * The live record of one lab owned by this process. Every `add*` persists
 * the record before returning, so callers record an object first and make it
 * after (write-ahead): a crash in between leaves nothing unrecorded.
 */
export class LabRegistry {
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly rec: LabRecord,
  ) {}

  /**
   * Claims lab `name` for this process and a management slot for it: `slot`
   * if given, else the first free one. A record left by a dead owner is
   * destroyed first. Throws E_CONFLICT when a live process owns the name or
   * holds the asked slot, E_CAPACITY when all SLOTS slots are held.
   */
  static claim(name: string, opts: { slot?: number; dir?: string } = {}): LabRegistry {
    const dir = opts.dir ?? labDir();
    mkdirSync(dir, { recursive: true });
    const owner = procRef(process.pid)!;
    const rec: LabRecord = { version: 1, name, owner, slot: null, namespaces: [], links: [], pids: [], files: [] };
    const path = labFile(name, dir);
    if (!createExclusive(path, json(rec))) {
      const other = readLab(name, dir);
      if (other && isAlive(other.owner)) throw conflict(`lab ${show(name)} exists, owned by running process ${other.owner.pid}`, 'name');
      destroyLab(name, dir);
      if (!createExclusive(path, json(rec))) throw conflict(`lab ${show(name)} was just created by another process`, 'name');
    }
    const reg = new LabRegistry(dir, rec);
    try {
      rec.slot = claimSlot(name, opts.slot, dir);
      reg.save();
    } catch (e) {
      destroyLab(name, dir);
      throw e;
    }
    return reg;
  }

  get name(): string {
    return this.rec.name;
  }

  get slot(): number {
    return this.rec.slot!;
  }

  /** A copy of the record as persisted. */
  get record(): LabRecord {
    return structuredClone(this.rec);
  }

  addNamespace(ns: string): void {
    this.add(this.rec.namespaces, ns);
  }

  addLink(name: string): void {
    this.add(this.rec.links, name);
  }

  /** Records a running process (with its start time, so a later process reusing the pid is never killed). */
  addPid(pid: number): void {
    const ref = procRef(pid) ?? { pid };
    this.check();
    this.rec.pids.push(ref);
    this.save();
  }

  addFile(path: string): void {
    this.add(this.rec.files, resolve(path));
  }

  /** Destroys the lab (see `destroyLab`) if this process still owns its record. Idempotent; later `add*` calls throw. */
  destroy(): void {
    this.closed = true;
    const cur = readLab(this.rec.name, this.dir);
    if (cur && cur.owner.pid === this.rec.owner.pid && cur.owner.start === this.rec.owner.start) destroyLab(this.rec.name, this.dir);
  }

  private add(list: string[], item: string): void {
    this.check();
    if (list.includes(item)) return;
    list.push(item);
    this.save();
  }

  private check(): void {
    if (this.closed) throw conflict(`lab ${show(this.rec.name)} is destroyed`);
  }

  private save(): void {
    writeAtomic(labFile(this.rec.name, this.dir), json(this.rec));
  }
}

const json = (rec: LabRecord): string => `${JSON.stringify(rec, null, 2)}\n`;

/**
 * Claims a slot file (content: the lab's name) exclusively. A slot file
 * naming a lab without a record is an orphan and taken over: records are made
 * before slots and removed after them, so no live lab looks like that.
 */
function claimSlot(name: string, want: number | undefined, dir: string): number {
  const candidates = want === undefined ? [...Array(SLOTS).keys()] : [want];
  const holders: string[] = [];
  for (const s of candidates) {
    const path = slotFile(s, dir);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (createExclusive(path, `${name}\n`)) return s;
      const holder = readText(path)?.trim();
      if (holder === undefined) continue; // released meanwhile
      if (existsSync(labFile(holder, dir))) {
        holders.push(`slot ${s} by lab ${show(holder)}`);
        break;
      }
      rmSync(path, { force: true });
    }
  }
  if (want !== undefined) throw conflict(`slot ${want} is taken: ${holders.join(', ') || 'contended'}`, 'slot');
  throw capacity(`all ${SLOTS} lab slots are taken (${holders.join(', ')}): destroy a lab first`, 'slot');
}
