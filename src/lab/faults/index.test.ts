// The faults table: the kinds in their order, the help the CLI shows, and
// the checks `fail`/`heal` make before touching the lab.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeftError } from '../../model/errors.js';
import type { Cloud } from '../cloud.js';
import { FAULT_HELP, FAULT_KIND_RULE, FAULT_KINDS, FAULTS, failFault, healFault, isFaultKind } from './index.js';

// Nothing below reaches the lab: every call is refused before it would.
const noLab = {} as Cloud;
const invalid = (field: string, message: RegExp) => (e: unknown) =>
  e instanceof WeftError && e.code === 'E_INVALID_ARG' && e.field === field && message.test(e.message);

test('the kinds, in the order the CLI lists them, each with what it does', () => {
  assert.deepEqual(FAULT_KINDS, ['host', 'backend', 'link', 'server']);
  assert.equal(FAULT_KIND_RULE, 'must be one of host, backend, link, server');
  assert.equal(
    FAULT_HELP,
    'host: the hypervisor goes dark; backend: a VIP backend stops; link: only its underlay link; server: a `weft server` replica is killed',
  );
  assert.deepEqual(
    FAULT_KINDS.filter((k) => FAULTS[k].silent),
    ['link'],
  );
});

test('isFaultKind takes the kinds only', () => {
  for (const k of FAULT_KINDS) assert.ok(isFaultKind(k));
  for (const v of ['', 'Host', 'vm', 1, null, undefined]) assert.equal(isFaultKind(v), false);
});

test('an unknown kind is refused naming the kinds', async () => {
  await assert.rejects(failFault(noLab, 'vm', 'x'), invalid('what', /^invalid what "vm": must be one of host, backend, link, server$/));
  await assert.rejects(healFault(noLab, 7, 'x'), invalid('what', /must be one of host, backend, link, server/));
});

test('--silent is for a link only', async () => {
  for (const kind of ['host', 'backend', 'server'])
    await assert.rejects(failFault(noLab, kind, 'x', { silent: true }), invalid('silent', /applies to `fail link` only, true or false/));
  await assert.rejects(failFault(noLab, 'link', 'x', { silent: 'yes' }), invalid('silent', /applies to `fail link` only/));
});
