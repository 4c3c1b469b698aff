import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newId } from './ids.js';
import { name } from './validate.js';

test('names that parse as ids are refused, naming the field', () => {
  for (const id of [newId(), '00000000-0000-0000-0000-000000000000']) {
    assert.throws(
      () => name('name', id),
      (e: Error & { code: string; field: string }) =>
        e.code === 'E_INVALID_ARG' && e.field === 'name' && e.message.startsWith(`invalid name ${JSON.stringify(id)}: must not look like an id`),
    );
  }
  // Close to an id but not one: still a name.
  for (const ok of ['hv1', '0190a1b2-0000-7000-8000-00000000000', 'x0190a1b2-0000-7000-8000-000000000000']) assert.equal(name('name', ok), ok);
});
