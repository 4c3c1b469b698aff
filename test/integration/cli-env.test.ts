// Every flag of `weft server` and `weft agent` has an environment variable
// (so a systemd unit's EnvironmentFile= can set any of them), named in help
// as `(env: NAME)`; and the real binary takes its settings from them.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { program } from '../../src/cli/main.js';
import { WEFT_BIN } from '../../src/lab/server-process.js';
import { testDb } from '../support/stores.js';

const command = (name: string): Command => {
  const c = program.commands.find((x) => x.name() === name);
  assert.ok(c, `weft ${name} exists`);
  return c;
};

function weft(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(WEFT_BIN, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

describe('weft server and weft agent: a variable for every flag', () => {
  for (const name of ['server', 'agent']) {
    test(`every option of weft ${name} has a WEFT_ variable, shown in its help`, () => {
      const c = command(name);
      assert.ok(c.options.length >= 10, `weft ${name} has its options (${c.options.length})`);
      const help = c.helpInformation();
      const seen = new Map<string, string>();
      for (const o of c.options) {
        assert.match(o.envVar ?? '', /^WEFT_[A-Z0-9_]+$/, `${o.flags} has no WEFT_ environment variable`);
        const env = o.envVar as string;
        assert.equal(seen.get(env), undefined, `${env} names both ${seen.get(env)} and ${o.flags}`);
        seen.set(env, o.flags);
        // Help wraps lines: compare with the whitespace folded.
        if (!o.hidden) assert.match(help.replace(/\s+/g, ' '), new RegExp(`env: ${env}\\b`), `weft ${name} --help does not show ${env}`);
      }
    });
  }

  test('weft server takes its listeners and store from the environment alone', async () => {
    const db = await testDb('sqlite');
    const proc = spawn(WEFT_BIN, ['server'], {
      env: {
        ...process.env,
        WEFT_ADMIN_TOKEN: 'cli-env-admin-token-0123456789',
        WEFT_DB: db.url,
        WEFT_API_LISTEN: '127.0.0.1:0',
        WEFT_SVP_LISTEN: 'off',
        WEFT_STREAM_LISTEN: 'off',
        WEFT_LOG_LEVEL: 'warn',
        WEFT_CPU_OVERCOMMIT: '2',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let err = '';
        proc.stderr.on('data', (d) => {
          err += d;
          if (/weft server: .*\n/.test(err)) resolve(err);
        });
        proc.once('exit', (c) => reject(new Error(`weft server exited ${c}: ${err}`)));
      });
      const m = /store (\S+), API (http:\/\/127\.0\.0\.1:\d+), SVP off, stream off/.exec(line);
      assert.ok(m, `the listeners from the environment: ${line}`);
      assert.match(m[1] as string, /weft\.db/);
      const h = (await (await fetch(`${m[2]}/healthz`)).json()) as { status: string };
      assert.equal(h.status, 'ok');
    } finally {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await gone;
      await db.drop();
    }
  });

  test('a bad value in a variable is refused, naming the variable', async () => {
    const r = await weft(['server', '--db', 'sqlite::memory:'], { WEFT_CPU_OVERCOMMIT: '100' });
    assert.notEqual(r.code, 0);
    assert.match(r.err, /WEFT_CPU_OVERCOMMIT/);
    assert.match(r.err, /1\.\.64/);
    const p = await weft(['server', '--db', 'sqlite::memory:'], { WEFT_PLACEMENT: 'random' });
    assert.notEqual(p.code, 0);
    assert.match(p.err, /WEFT_PLACEMENT/);
  });

  test("a switch's variable means what it says: WEFT_LAZY=maybe is refused, not taken as on", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-cli-env-'));
    try {
      const token = join(dir, 'token');
      writeFileSync(token, 'weft_agent-token-for-the-env-test\n');
      const env = { WEFT_SERVER: '127.0.0.1', WEFT_HOST: 'hv1', WEFT_AGENT_TOKEN_FILE: token };
      for (const v of ['WEFT_LAZY', 'WEFT_NO_ROUTING']) {
        const r = await weft(['agent'], { ...env, [v]: 'maybe' });
        assert.equal(r.code, 1, `${v}=maybe: ${r.err}`);
        assert.match(r.err, new RegExp(`^error: invalid ${v} "maybe": must be true or false`, 'm'));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
