import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ErrorObject } from 'ajv';
import { describeValidation, STATUS } from './errors.js';

const err = (o: Partial<ErrorObject>): ErrorObject => ({ keyword: 'type', instancePath: '', schemaPath: '', params: {}, ...o }) as ErrorObject;

test('validation messages name the field path and the value', () => {
  const d = describeValidation([err({ instancePath: '/ports/0/ipv4', message: 'must be string' })], 'body', { ports: [{ ipv4: 5 }] });
  assert.deepEqual(d, { field: 'body.ports[0].ipv4', message: 'invalid body.ports[0].ipv4 5: must be string' });
});

test('unknown and missing fields are named', () => {
  assert.equal(
    describeValidation([err({ keyword: 'additionalProperties', params: { additionalProperty: 'subnet' } })], 'body', {}).message,
    'unknown field body.subnet',
  );
  assert.equal(describeValidation([err({ keyword: 'required', params: { missingProperty: 'name' } })], 'body', {}).message, 'missing field body.name');
});

test('every error code has a status', () => {
  assert.equal(STATUS.E_INVALID_ARG, 400);
  assert.equal(STATUS.E_NOT_FOUND, 404);
  assert.equal(STATUS.E_CONFLICT, 409);
  assert.equal(STATUS.E_CAPACITY, 409);
  assert.equal(STATUS.E_UNAUTHENTICATED, 401);
  assert.equal(STATUS.E_FORBIDDEN, 403);
  assert.equal(STATUS.E_QUOTA, 403);
});
