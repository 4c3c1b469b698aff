// An instance's files and its cloud-init seed, built by the real
// cloud-localds and read back with isoinfo: the volume label cloud-init
// looks for, the files in the image, rebuilding only on change, what a
// failed build leaves, and removal.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Profile } from '../../model/profile.js';
import { run } from '../../sys/exec.js';
import { removeInstanceFiles, writeInstanceFiles } from './seed.js';

const have = (cmd: string, arg: string) => !spawnSync(cmd, [arg]).error;
const skip = have('cloud-localds', '--help') && have('isoinfo', '-version') ? false : 'needs cloud-localds (cloud-image-utils) and isoinfo (genisoimage)';

const root = mkdtempSync(join(tmpdir(), 'weft-seed-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = () => join(root, `instances/i${n++}`);

const profile = (o: Partial<Profile> = {}): Profile => ({
  domain: "<domain type='kvm'><name>weft-x</name></domain>\n",
  metaData: 'instance-id: 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\nlocal-hostname: vm1\n',
  networkConfig: 'version: 2\nethernets:\n  eth0:\n    match: {macaddress: "02:57:46:00:00:01"}\n    addresses: [10.0.0.5/24]\n',
  userData: '#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0 tenant@example\n',
  ...o,
});

const mode = (p: string) => statSync(p).mode & 0o777;
/** A file of the image, by its Rock Ridge name. */
const fromIso = (img: string, name: string) => spawnSync('isoinfo', ['-R', '-i', img, '-x', `/${name}`], { encoding: 'utf8' }).stdout;

describe('instance files and the cloud-init seed', { skip }, () => {
  test('writes the four parts and a seed labelled cidata that holds three of them', async () => {
    const dir = newDir();
    const p = profile();
    assert.deepEqual(await writeInstanceFiles(dir, p), { domain: true, seed: true });
    assert.deepEqual(readdirSync(dir).sort(), ['domain.xml', 'meta-data', 'network-config', 'seed.img', 'user-data']);
    assert.equal(readFileSync(join(dir, 'domain.xml'), 'utf8'), p.domain);
    assert.equal(readFileSync(join(dir, 'user-data'), 'utf8'), p.userData);
    assert.equal(mode(join(dir, 'user-data')), 0o600);
    assert.equal(mode(join(dir, 'seed.img')), 0o600);
    assert.equal(mode(join(dir, 'meta-data')), 0o644);

    const img = join(dir, 'seed.img');
    const info = (await run('isoinfo', ['-d', '-i', img])).stdout;
    assert.match(info, /^Volume id: cidata$/m);
    const listing = (await run('isoinfo', ['-R', '-f', '-i', img])).stdout.split('\n').filter(Boolean).sort();
    assert.deepEqual(listing, ['/meta-data', '/network-config', '/user-data']);
    assert.equal(fromIso(img, 'user-data'), p.userData);
    assert.equal(fromIso(img, 'meta-data'), p.metaData);
    assert.equal(fromIso(img, 'network-config'), p.networkConfig);
  });

  test('the same profile again changes nothing; a new domain leaves the seed; new user-data rebuilds it', async () => {
    const dir = newDir();
    const img = join(dir, 'seed.img');
    await writeInstanceFiles(dir, profile());
    const before = statSync(img);
    assert.deepEqual(await writeInstanceFiles(dir, profile()), { domain: false, seed: false });
    assert.equal(statSync(img).ino, before.ino);

    const domain = "<domain type='kvm'><name>weft-x</name><memory>2</memory></domain>\n";
    assert.deepEqual(await writeInstanceFiles(dir, profile({ domain })), { domain: true, seed: false });
    assert.equal(statSync(img).ino, before.ino);
    assert.equal(readFileSync(join(dir, 'domain.xml'), 'utf8'), domain);

    const userData = `${profile().userData}  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1 second@example\n`;
    assert.deepEqual(await writeInstanceFiles(dir, profile({ domain, userData })), { domain: false, seed: true });
    assert.notEqual(statSync(img).ino, before.ino);
    assert.equal(fromIso(img, 'user-data'), userData);
    assert.equal(readFileSync(join(dir, 'user-data'), 'utf8'), userData);

    // A seed gone, or a user-data file others may read, is made again.
    rmSync(img);
    assert.deepEqual(await writeInstanceFiles(dir, profile({ domain, userData })), { domain: false, seed: true });
    assert.equal(fromIso(img, 'user-data'), userData);
    spawnSync('chmod', ['644', join(dir, 'user-data')]);
    assert.deepEqual(await writeInstanceFiles(dir, profile({ domain, userData })), { domain: false, seed: true });
    assert.equal(mode(join(dir, 'user-data')), 0o600);
    assert.deepEqual(readdirSync(dir).sort(), ['domain.xml', 'meta-data', 'network-config', 'seed.img', 'user-data']);
  });

  test('a seed that cannot be built fails E_DATAPLANE and leaves the files as they were, and no temporary ones', async () => {
    const dir = newDir();
    await writeInstanceFiles(dir, profile());
    const seed = readFileSync(join(dir, 'seed.img'));
    const failing = async () => {
      throw new Error('cloud-localds: exit 1: genisoimage failed');
    };
    const changed = profile({ userData: '#cloud-config\n{}\n', domain: '<domain/>\n' });
    await assert.rejects(writeInstanceFiles(dir, changed, { runner: failing }), { code: 'E_DATAPLANE', message: /cloud-init seed: cloud-localds: exit 1/ });
    assert.equal(readFileSync(join(dir, 'user-data'), 'utf8'), profile().userData);
    assert.equal(readFileSync(join(dir, 'domain.xml'), 'utf8'), profile().domain);
    assert.deepEqual(readFileSync(join(dir, 'seed.img')), seed);
    assert.deepEqual(readdirSync(dir).sort(), ['domain.xml', 'meta-data', 'network-config', 'seed.img', 'user-data']);
    // The next try builds it.
    assert.deepEqual(await writeInstanceFiles(dir, changed), { domain: true, seed: true });
    assert.equal(fromIso(join(dir, 'seed.img'), 'user-data'), changed.userData);
  });

  test('removeInstanceFiles removes weft’s files and the directory; what is not weft’s stays; a missing directory is fine', async () => {
    const a = newDir();
    await writeInstanceFiles(a, profile());
    writeFileSync(join(a, 'console.sock'), '');
    writeFileSync(join(a, '.weft-tmp-abc-user-data'), 'left by a crash');
    await removeInstanceFiles(a);
    assert.equal(existsSync(a), false);
    await removeInstanceFiles(a);

    const b = newDir();
    await writeInstanceFiles(b, profile());
    writeFileSync(join(b, 'notes.txt'), 'an operator put it here');
    await removeInstanceFiles(b);
    assert.deepEqual(readdirSync(b), ['notes.txt']);
  });
});
