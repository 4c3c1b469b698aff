// What VirshHost does with virsh's words, without virsh: quoting for its
// command parser, and its output cut from readline's prompts and echoes (as
// virsh 9 writes them with -q and a pipe for stdin). The real virsh is in
// test/integration/virsh.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanOutput, quoteArg } from './virsh.js';

test('quoteArg: single quotes, a quote as in sh; control characters refused', () => {
  assert.equal(quoteArg('weft-a'), "'weft-a'");
  assert.equal(quoteArg("it's"), "'it'\\''s'");
  assert.equal(quoteArg(''), "''");
  for (const bad of ['a\nb', 'a\tb', 'a\rb', 'a\u0000b', 'a\u007fb'])
    assert.throws(
      () => quoteArg(bad),
      (e: { code?: string }) => e.code === 'E_INVALID_ARG',
    );
});

test('cleanOutput: the prompt, the echoed lines and the marker line go; the output stays as written', () => {
  const line = "'list' '--all' '--name'";
  // The first command: the prompt virsh starts with, the echo of the line, the output, the prompt and echo of the marker line.
  assert.equal(cleanOutput(`virsh # ${line}\ntest\nweft-a\nvirsh # echo __weft_ab_1__\n`, line, ''), 'test\nweft-a\n');
  // A later one: what followed the previous marker (its stderr marker's line) first; no output.
  const prev = 'echo --err __weft_ab_1__\n';
  assert.equal(cleanOutput(`virsh # ${prev}virsh # 'start' 'weft-a'\nvirsh # echo __weft_ab_2__\n`, "'start' 'weft-a'", prev), '');
  // An output without a newline (echo, under -q), and a version that ends the marker with one.
  assert.equal(cleanOutput(`\nvirsh # ${prev}virsh # 'echo' 'x'\nxvirsh # echo __weft_ab_2__\n`, "'echo' 'x'", prev), 'x');
  // Output that looks like a prompt in the middle is kept.
  assert.equal(cleanOutput(`virsh # 'x'\na virsh # b\nvirsh # echo __weft_ab_3__\n`, "'x'", ''), 'a virsh # b\n');
  // Without readline's echo (no prompt, no echoed line): the output alone.
  assert.equal(cleanOutput('test\n', line, ''), 'test\n');
});
