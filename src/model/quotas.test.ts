import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_QUOTAS, limitsOf, NO_OVERRIDES, overQuota } from './quotas.js';

test("a tenant's own quota replaces the default for that kind only; null keeps the default", () => {
  const l = limitsOf(DEFAULT_QUOTAS, { ...NO_OVERRIDES, publicIpv4: 2, instances: 0 });
  assert.deepEqual(l, { ...DEFAULT_QUOTAS, publicIpv4: 2, instances: 0 });
  assert.deepEqual(limitsOf(DEFAULT_QUOTAS, NO_OVERRIDES), DEFAULT_QUOTAS);
});

test('a write that grows a kind past its limit is E_QUOTA naming the quota, the limit and the use', () => {
  const limits = { ...DEFAULT_QUOTAS, ports: 4 };
  const e = overQuota('acme', limits, { ports: 3, instances: 1 }, { ports: 5, instances: 2 });
  assert.equal(e?.code, 'E_QUOTA');
  assert.equal(e?.field, 'quotas.ports');
  assert.equal(e?.message, 'quota ports exceeded: tenant acme may hold 4 ports, holds 3, and this request needs 2 more');
  assert.equal(overQuota('acme', limits, { ports: 3 }, { ports: 4 }), null, 'up to the limit is fine');
});

test('a kind already above its limit (lowered by an operator) may stay or shrink, never grow', () => {
  const limits = { ...DEFAULT_QUOTAS, vips: 1 };
  assert.equal(overQuota('acme', limits, { vips: 3 }, { vips: 3 }), null);
  assert.equal(overQuota('acme', limits, { vips: 3 }, { vips: 2 }), null);
  assert.equal(overQuota('acme', limits, { vips: 3 }, { vips: 4 })?.code, 'E_QUOTA');
});

test('the defaults leave most of a /24 public pool to other tenants', () => {
  assert.ok(DEFAULT_QUOTAS.publicIpv4 * 10 <= 254);
});
