// Use cases for tenants' SSH public keys: what their instances' cloud-init
// user-data authorizes (core/profiles.ts). Tenant-owned like networks: a
// tenant token sees and changes its own only.
import type { Static } from '@sinclair/typebox';
import { conflict, invalid } from '../model/errors.js';
import type * as I from '../model/inputs.js';
import { parseSshKey } from '../model/ssh-key.js';
import type { SshKey } from '../model/types.js';
import * as v from '../model/validate.js';
import type { SshKeyRow } from '../store/schema.js';
import { type Ctx, type Scope, stamp } from './context.js';
import { logInstances } from './profiles.js';
import * as ref from './resolve.js';
import { sshKeyView } from './views.js';

/** A tenant holds at most this many keys (every one goes into each of its VMs' user-data). */
export const MAX_KEYS_PER_TENANT = 100;

export async function createKey(ctx: Ctx, scope: Scope, input: Static<typeof I.SshKeyCreate>): Promise<SshKey> {
  v.name('name', input.name);
  const key = parseSshKey('publicKey', input.publicKey);
  const tenantRef = scope.tenantId ?? input.tenant;
  if (tenantRef === undefined) throw invalid('tenant', undefined, 'required');
  return ctx.store.write(async (tx) => {
    const t = await ref.tenant(tx, tenantRef, scope);
    const mine = await tx.all('sshKeys', { tenantId: t.id });
    if (mine.some((k) => k.name === input.name)) throw conflict(`ssh key ${JSON.stringify(input.name)} already exists in tenant ${t.name}`, 'name');
    const same = mine.find((k) => k.fingerprint === key.fingerprint);
    if (same) throw conflict(`this key (${key.fingerprint}) is already tenant ${t.name}'s key ${same.name}`, 'publicKey');
    if (mine.length >= MAX_KEYS_PER_TENANT)
      throw invalid('publicKey', key.fingerprint, `tenant ${t.name} already has ${mine.length} keys, the most a tenant may hold: delete one first`);
    const row: SshKeyRow = { ...stamp(ctx), tenantId: t.id, name: input.name, type: key.type, fingerprint: key.fingerprint, publicKey: key.text };
    await tx.insert('sshKeys', row);
    // Every instance of the tenant: its seed holds the tenant's keys.
    await logInstances(tx, { tenantId: t.id }, row.createdAt, ctx.actor);
    return sshKeyView(row);
  });
}

/** Instances booted with the key keep it (cloud-init wrote it once); profiles rendered from now on leave it out. */
export async function deleteKey(ctx: Ctx, scope: Scope, keyRef: string): Promise<void> {
  await ctx.store.write(async (tx) => {
    const k = await ref.owned(tx, 'sshKeys', keyRef, scope);
    await tx.remove('sshKeys', { id: k.id });
    await logInstances(tx, { tenantId: k.tenantId }, ctx.clock.now().toISOString(), ctx.actor);
  });
}
