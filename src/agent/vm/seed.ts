// An instance's files on its hypervisor (model/profile.ts instanceDir): the
// profile's four parts as files, and the cloud-init NoCloud seed built from
// three of them (seed.img, an ISO 9660 image labelled `cidata` that the
// domain attaches as a CD-ROM). Every file is replaced whole (a temporary
// file renamed over it), and seed.img is rebuilt only when what it holds
// changed: before the files it is made from are replaced, so that files
// equal to the profile always mean a seed made from them.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { WeftError } from '../../model/errors.js';
import type { Profile } from '../../model/profile.js';
import { type Runner, run } from '../../sys/exec.js';

/** The files of an instance's directory, and their modes: user-data holds the tenant's keys, the seed holds user-data. */
export const INSTANCE_FILES = {
  'domain.xml': 0o644,
  'meta-data': 0o644,
  'network-config': 0o644,
  'user-data': 0o600,
  'seed.img': 0o600,
} as const;

/** In each instance's directory: the id of the host whose agent wrote it last (agent/vms.ts: on shared storage only that host removes it). */
export const OWNER_FILE = 'owner';

/** The instance's disk (model/profile-render.ts DISK_FILE): a qcow2 overlay on its image, made once; removed with the rest. */
export const DISK = 'disk.qcow2';

/**
 * Makes the instance's own disk if it has none: a qcow2 overlay of
 * `sizeGb` whose backing file is the image `base` (qemu-img, from
 * qemu-utils), so the guest writes its overlay only and every instance of
 * an image shares the image read-only. An existing disk is left as it is
 * (it holds the guest's data). A missing image is E_DATAPLANE naming it.
 */
export async function ensureDisk(path: string, base: string, baseFormat: 'qcow2' | 'raw', sizeGb: number, o: SeedOptions = {}): Promise<boolean> {
  if (await exists(path)) return false;
  if (!(await exists(base)))
    throw new WeftError('E_DATAPLANE', `image ${base} is not on this host: put the image there (or change the site's imagePath) and the agent makes the disk`);
  const tmp = join(dirname(path), `${TEMP_PREFIX}disk-${randomBytes(4).toString('hex')}`);
  try {
    await (o.runner ?? run)('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', baseFormat, '-b', base, tmp, `${sizeGb}G`], { timeoutMs: o.timeoutMs ?? 60_000 });
    // The guest's data: its owner's only (libvirt hands it to the VM's qemu user when the domain starts).
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new WeftError('E_DATAPLANE', `making the disk ${path} on ${base}: ${(e as Error).message}`, undefined, { cause: e });
  }
  return true;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** The serial console's socket (the hypervisor makes it); removed with the rest. */
export const CONSOLE_SOCKET = 'console.sock';

const TEMP_PREFIX = '.weft-tmp-';

export interface WrittenFiles {
  /** domain.xml changed (or was made): the domain needs defining again. */
  domain: boolean;
  /** seed.img was rebuilt: the guest sees the new seed at its next boot. */
  seed: boolean;
}

export interface SeedOptions {
  /** Runs cloud-localds (default: sys/exec's run). */
  runner?: Runner;
  /** cloud-localds's time limit (default 60 s). */
  timeoutMs?: number;
}

/**
 * Makes `dir` hold `profile`: domain.xml, meta-data, network-config,
 * user-data (0600) and seed.img (0600, built by cloud-localds). Files that
 * already hold the right content are left alone; says what changed.
 */
export async function writeInstanceFiles(dir: string, profile: Profile, o: SeedOptions = {}): Promise<WrittenFiles> {
  try {
    return await writeFiles(dir, profile, o);
  } catch (e) {
    if (e instanceof WeftError) throw e;
    throw new WeftError('E_DATAPLANE', `instance files ${dir}: ${(e as Error).message}`, undefined, { cause: e });
  }
}

async function writeFiles(dir: string, profile: Profile, o: SeedOptions): Promise<WrittenFiles> {
  const want: Record<'domain.xml' | 'meta-data' | 'network-config' | 'user-data', string> = {
    'domain.xml': profile.domain,
    'meta-data': profile.metaData,
    'network-config': profile.networkConfig,
    'user-data': profile.userData,
  };
  await mkdir(dir, { recursive: true });
  const stale = new Set<keyof typeof want>();
  for (const f of Object.keys(want) as (keyof typeof want)[]) if (!(await holds(join(dir, f), want[f], INSTANCE_FILES[f]))) stale.add(f);
  const seedStale = stale.has('meta-data') || stale.has('network-config') || stale.has('user-data') || !(await isFile(join(dir, 'seed.img')));
  if (stale.size === 0 && !seedStale) return { domain: false, seed: false };

  const tag = randomBytes(6).toString('hex');
  const temp = (f: string) => join(dir, `${TEMP_PREFIX}${tag}-${f}`);
  const made: string[] = [];
  try {
    // The seed's inputs are the temporary files, so the seed is rebuilt before any of them is in place.
    const inputs = seedStale ? new Set([...stale, 'meta-data', 'network-config', 'user-data'] as const) : stale;
    for (const f of inputs) {
      made.push(temp(f));
      await writeWhole(temp(f), want[f], INSTANCE_FILES[f]);
    }
    if (seedStale) {
      made.push(temp('seed.img'));
      await buildSeed(temp('seed.img'), temp('user-data'), temp('meta-data'), temp('network-config'), o);
      await rename(temp('seed.img'), join(dir, 'seed.img'));
    }
    for (const f of inputs) await rename(temp(f), join(dir, f));
  } finally {
    for (const f of made) await rm(f, { force: true });
  }
  return { domain: stale.has('domain.xml'), seed: seedStale };
}

/**
 * Removes an instance's files (those weft writes, the console socket, and
 * temporary files a crash left), then the directory if nothing else is in
 * it. A directory that is gone already is fine.
 */
export async function removeInstanceFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new WeftError('E_DATAPLANE', `instance files ${dir}: ${(e as Error).message}`, undefined, { cause: e });
  }
  const ours = new Set<string>([...Object.keys(INSTANCE_FILES), CONSOLE_SOCKET, DISK, OWNER_FILE]);
  try {
    for (const n of names) if (ours.has(n) || n.startsWith(TEMP_PREFIX)) await rm(join(dir, n), { force: true });
    await rmdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Something not weft's is in it: it stays, with that.
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST')
      throw new WeftError('E_DATAPLANE', `instance files ${dir}: ${(e as Error).message}`, undefined, { cause: e });
  }
}

async function buildSeed(out: string, userData: string, metaData: string, networkConfig: string, o: SeedOptions): Promise<void> {
  const runner = o.runner ?? run;
  try {
    await runner('cloud-localds', ['-N', networkConfig, out, userData, metaData], { timeoutMs: o.timeoutMs ?? 60_000 });
  } catch (e) {
    throw new WeftError('E_DATAPLANE', `building the cloud-init seed: ${(e as Error).message}`, undefined, { cause: e });
  }
  // cloud-localds copies its image out with the umask's mode.
  const f = await open(out, 'r+');
  try {
    await f.chmod(INSTANCE_FILES['seed.img']);
    await f.sync();
  } finally {
    await f.close();
  }
}

/** A new file (it must not exist) with `text`, `mode`, on disk before it is renamed into place. */
async function writeWhole(path: string, text: string, mode: number): Promise<void> {
  const f = await open(path, 'wx', mode);
  try {
    await f.writeFile(text);
    // The umask may have taken bits from the mode asked for at creation.
    await f.chmod(mode);
    await f.sync();
  } finally {
    await f.close();
  }
}

/** `path` is a file with exactly `text`, and `mode`. */
async function holds(path: string, text: string, mode: number): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile() || (st.mode & 0o777) !== mode) return false;
    return (await readFile(path, 'utf8')) === text;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new WeftError('E_DATAPLANE', `instance file ${path}: ${(e as Error).message}`, undefined, { cause: e });
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
