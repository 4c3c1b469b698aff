import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { certHostNames, certNamesHost } from './cert-names.js';

describe('certHostNames', () => {
  test('the CN and every DNS SAN, lower-cased; IP and e-mail SANs are not host names', () => {
    assert.deepEqual(certHostNames({ subject: { CN: 'HV1' }, subjectaltname: 'DNS:hv1.mgmt.example, IP Address:192.0.2.1, email:a@b, DNS:hv1' }), [
      'hv1',
      'hv1.mgmt.example',
    ]);
  });
  test('several CNs, no SAN, no subject', () => {
    assert.deepEqual(certHostNames({ subject: { CN: ['a', 'b'] } }), ['a', 'b']);
    assert.deepEqual(certHostNames({ subject: null }), []);
    assert.deepEqual(certHostNames({}), []);
  });
  test('a quoted SAN holding a comma is one entry, not a second name', () => {
    assert.deepEqual(certHostNames({ subjectaltname: 'DNS:"hv1, DNS:hv2"' }), ['hv1, dns:hv2']);
    assert.equal(certNamesHost({ subjectaltname: 'DNS:"hv1, DNS:hv2"' }, 'hv2'), false);
  });
});

describe('certNamesHost', () => {
  test('exact, case-insensitive; no prefix, suffix or wildcard match', () => {
    const cert = { subject: { CN: 'hv1' }, subjectaltname: 'DNS:*.example' };
    assert.equal(certNamesHost(cert, 'hv1'), true);
    assert.equal(certNamesHost(cert, 'HV1'), true);
    assert.equal(certNamesHost(cert, 'hv10'), false);
    assert.equal(certNamesHost(cert, 'hv'), false);
    assert.equal(certNamesHost(cert, 'a.example'), false);
  });
});
