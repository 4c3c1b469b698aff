// An instance's profile (model/profile.ts): the libvirt domain and the
// cloud-init seed its hypervisor runs it with, rendered from the source of
// truth (store/records.ts profileInput), and the change log's record of it
// for the host's agent.
import type { ChangeActor } from '../model/changes.js';
import { invalid } from '../model/errors.js';
import type { Profile } from '../model/profile.js';
import { renderProfile } from '../model/profile-render.js';
import { instanceInfo, profileInput } from '../store/records.js';
import type { Repo } from '../store/repo.js';
import type { InstanceRow } from '../store/schema.js';
import type { Ctx, Scope } from './context.js';
import * as ref from './resolve.js';

/** GET /v1/instances/{id}/profile: tenant-scoped like the instance. */
export async function getProfile(ctx: Ctx, scope: Scope, instRef: string): Promise<Profile & { instanceId: string; hostId: string }> {
  return ctx.store.read(async (tx) => {
    const i = await ref.owned(tx, 'instances', instRef, scope);
    if (i.image === null)
      throw invalid('image', null, `instance ${i.name} has no image: set one (weft instance update ${i.name} --image NAME) before it can have a profile`);
    return { instanceId: i.id, hostId: i.hostId, ...renderProfile(await profileInput(tx, i)) };
  });
}

/**
 * Logs an instance's record for its host's agent (instance.updated): after
 * anything its profile is made of changed. `fromHostId`: the host it left,
 * on a move (that agent removes its domain).
 */
export async function logInstance(tx: Repo, i: InstanceRow, at: string, actor: ChangeActor | null, fromHostId: string | null = null): Promise<void> {
  await tx.appendChange({ kind: 'instance.updated', instance: await instanceInfo(tx, i), fromHostId }, at, actor);
}

/** logInstance for every instance matching `where` (a tenant's, when its keys change; a site's, when its VM settings do). */
export async function logInstances(tx: Repo, where: { tenantId?: string; siteId?: string }, at: string, actor: ChangeActor | null): Promise<void> {
  for (const i of (await tx.all('instances', where)).sort((a, b) => a.id.localeCompare(b.id))) await logInstance(tx, i, at, actor);
}
