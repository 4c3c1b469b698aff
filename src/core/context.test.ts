import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_ARP_RATE, DEFAULT_ND_RATE } from '../agent/reconcile/desired.js';
import { DEFAULT_QUOTAS } from '../model/quotas.js';
import { RATE_MAX } from '../model/validate.js';
import { checkSettings, DEFAULT_SETTINGS, DEFAULT_TENANT_RATE_MAX } from './context.js';

test("a network that sets no rate gets the agents' default, which the tenant maximum allows", () => {
  assert.ok(DEFAULT_ARP_RATE <= DEFAULT_TENANT_RATE_MAX.arpRate);
  assert.ok(DEFAULT_ND_RATE <= DEFAULT_TENANT_RATE_MAX.ndRate);
  assert.ok(DEFAULT_TENANT_RATE_MAX.arpRate < RATE_MAX);
});

test('settings out of range are refused, naming the setting, the value and the range', () => {
  assert.throws(
    () => checkSettings({ ...DEFAULT_SETTINGS, tenantRateMax: { arpRate: 0, ndRate: 20 } }),
    /invalid tenantRateMax\.arpRate 0: must be an integer 1\.\.100000/,
  );
  assert.throws(
    () => checkSettings({ ...DEFAULT_SETTINGS, quotas: { ...DEFAULT_QUOTAS, vips: -1 } }),
    /invalid quotas\.vips -1: must be an integer 0\.\.1000000/,
  );
  assert.throws(() => checkSettings({ ...DEFAULT_SETTINGS, quotas: { ...DEFAULT_QUOTAS, ports: 1.5 } }), /invalid quotas\.ports 1\.5/);
  assert.equal(checkSettings({ ...DEFAULT_SETTINGS, quotas: { ...DEFAULT_QUOTAS, instances: 0 } }).quotas.instances, 0);
});
