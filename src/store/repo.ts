// Data access shared by both stores: one Kysely query layer over SQLite and
// PostgreSQL. A Repo is bound to one transaction (writes) or to the pool
// (reads); the Store decides which and holds the write lock.
import { type Kysely, sql, type Transaction } from 'kysely';
import { fromKey, keyOf } from '../model/addr.js';
import { firstGap } from '../model/alloc.js';
import { type AuditedChange, type Change, type ChangeActor, changeEntity, changeVni, type LoggedChange, type PortMapping } from '../model/changes.js';
import { capacity, conflict } from '../model/errors.js';
import type { QuotaKind, Quotas } from '../model/quotas.js';
import { PORT_MAPPING_SELECT } from './records.js';
import type { DB, ShootdownRow } from './schema.js';

export type Table = keyof DB;
type Where<T extends Table> = Partial<DB[T]>;

/** A page of the change log for the audit trail: versions strictly between `after` and `before`. */
export interface ChangeLogReq {
  /** Only versions above this one (0: from the start). */
  after: number;
  /** Only versions below this one; null: up to the head. */
  before: number | null;
  /** asc: the oldest `limit` of the range, oldest first; desc: the newest, newest first. */
  order: 'asc' | 'desc';
  limit: number;
}

export interface PageReq {
  limit: number;
  /** Return rows whose id sorts after this one. */
  after?: string | undefined;
}

/** How many allocated keys one round trip fetches while looking for a gap. */
const SCAN_BATCH = 512;

export class Repo {
  // biome-ignore lint/suspicious/noExplicitAny: one query layer over every table, typed at the method boundary
  private readonly db: Kysely<any>;
  private head: number | null = null;
  /** Changes appended in this transaction, handed to the store's listeners after commit. */
  readonly appended: LoggedChange[] = [];

  /**
   * @param cursorHints the store's memory of where each allocation cursor
   *   is, saving a read per allocation. Only a hint: a stale one (another
   *   replica moved on, a transaction rolled back) just starts the scan
   *   earlier; the allocations table decides what is free.
   */
  constructor(
    db: Kysely<DB> | Transaction<DB>,
    private readonly cursorHints: Map<string, bigint> = new Map(),
  ) {
    this.db = db as never;
  }

  async insert<T extends Table>(table: T, row: DB[T]): Promise<void> {
    await guard(() =>
      this.db
        .insertInto(table as string)
        .values(row)
        .execute(),
    );
  }

  async get<T extends Table>(table: T, id: string): Promise<DB[T] | undefined> {
    return (await this.db
      .selectFrom(table as string)
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()) as DB[T] | undefined;
  }

  async findOne<T extends Table>(table: T, where: Where<T>): Promise<DB[T] | undefined> {
    let q = this.db.selectFrom(table as string).selectAll();
    for (const [k, v] of Object.entries(where)) q = v === null ? q.where(k, 'is', null) : q.where(k, '=', v);
    return (await q.limit(1).executeTakeFirst()) as DB[T] | undefined;
  }

  /** Equality filters (an array value means "any of"), ordered by id, keyset-paged. */
  async list<T extends Table>(table: T, where: Record<string, unknown>, page: PageReq): Promise<DB[T][]> {
    let q = this.db.selectFrom(table as string).selectAll();
    for (const [k, v] of Object.entries(where)) {
      if (v === undefined) continue;
      if (Array.isArray(v)) q = v.length === 0 ? q.where(sql.lit(false)) : q.where(k, 'in', v);
      else q = v === null ? q.where(k, 'is', null) : q.where(k, '=', v);
    }
    if (page.after !== undefined) q = q.where('id', '>', page.after);
    return (await q.orderBy('id').limit(page.limit).execute()) as DB[T][];
  }

  async all<T extends Table>(table: T, where: Record<string, unknown>): Promise<DB[T][]> {
    let q = this.db.selectFrom(table as string).selectAll();
    for (const [k, v] of Object.entries(where)) {
      if (Array.isArray(v)) q = v.length === 0 ? q.where(sql.lit(false)) : q.where(k, 'in', v);
      else q = v === null ? q.where(k, 'is', null) : q.where(k, '=', v);
    }
    return (await q.execute()) as DB[T][];
  }

  async count<T extends Table>(table: T, where: Where<T> = {}): Promise<number> {
    let q = this.db.selectFrom(table as string).select(sql<number>`count(*)`.as('n'));
    for (const [k, v] of Object.entries(where)) q = v === null ? q.where(k, 'is', null) : q.where(k, '=', v);
    const r = (await q.executeTakeFirstOrThrow()) as { n: number | string };
    return Number(r.n);
  }

  async update<T extends Table>(table: T, id: string, patch: Partial<DB[T]>): Promise<void> {
    if (Object.keys(patch).length === 0) return;
    await guard(() =>
      this.db
        .updateTable(table as string)
        .set(patch)
        .where('id', '=', id)
        .execute(),
    );
  }

  async remove<T extends Table>(table: T, where: Where<T>): Promise<number> {
    let q = this.db.deleteFrom(table as string);
    for (const [k, v] of Object.entries(where)) q = q.where(k, '=', v);
    const r = await guard(() => q.executeTakeFirst());
    return Number(r.numDeletedRows);
  }

  /** Adds `sign` times these resources to a host's usage counters. */
  async addHostUsage(hostId: string, r: { cpus: number; memoryMb: number; diskGb: number }, sign: 1 | -1): Promise<void> {
    await this.db
      .updateTable('hosts')
      .set((eb) => ({
        usedCpus: eb('usedCpus', '+', sign * r.cpus),
        usedMemoryMb: eb('usedMemoryMb', '+', sign * r.memoryMb),
        usedDiskGb: eb('usedDiskGb', '+', sign * r.diskGb),
      }))
      .where('id', '=', hostId)
      .execute();
  }

  /**
   * What a tenant holds of each of these quota kinds, counted from the rows
   * (model/quotas.ts says what each counts). Under the write lock the count
   * cannot change before commit.
   */
  async tenantUsage(tenantId: string, kinds: readonly QuotaKind[]): Promise<Partial<Quotas>> {
    const out: Partial<Quotas> = {};
    for (const k of kinds) {
      if (k === 'publicIpv4') {
        const ports = await this.db
          .selectFrom('ports as p')
          .innerJoin('networks as n', 'n.id', 'p.networkId')
          .select(sql<number>`count(*)`.as('n'))
          .where('p.tenantId', '=', tenantId)
          .where('n.kind', '=', 'routed')
          .where('p.ipv4', 'is not', null)
          .executeTakeFirstOrThrow();
        const vips = await this.db
          .selectFrom('vips')
          .select(sql<number>`count(*)`.as('n'))
          .where('tenantId', '=', tenantId)
          .where('address', 'not like', '%:%')
          .executeTakeFirstOrThrow();
        out[k] = Number(ports.n) + Number(vips.n);
      } else out[k] = await this.count(k, { tenantId });
    }
    return out;
  }

  // --- allocation pools -------------------------------------------------

  /**
   * Takes the first free number in [lo, hi] at or after the pool's cursor,
   * wrapping around once; the cursor then moves past it, so a freed number
   * is handed out again only after the rest of the range (no quick reuse of
   * an address some cache may still hold). Throws E_CAPACITY when full.
   * Callers hold the write lock: find-then-insert cannot race.
   */
  async allocate(pool: string, lo: bigint, hi: bigint, owner: string, what: string): Promise<bigint> {
    if (hi < lo) throw capacity(`${what}: the range is empty`);
    const cursorPool = `${pool}|${keyOf(lo)}`;
    let start = this.cursorHints.get(cursorPool);
    if (start === undefined) {
      const c = await this.db.selectFrom('cursors').select('nextKey').where('pool', '=', cursorPool).executeTakeFirst();
      start = c ? fromKey(c.nextKey) : lo;
    }
    if (start < lo || start > hi) start = lo;
    const n = (await this.scan(pool, start, hi)) ?? (start > lo ? await this.scan(pool, lo, start - 1n) : null);
    if (n === null) throw capacity(`${what}: all ${hi - lo + 1n} addresses in the range are taken`);
    await this.insert('allocations', { pool, key: keyOf(n), owner });
    const next = n + 1n > hi ? lo : n + 1n;
    this.cursorHints.set(cursorPool, next);
    await this.db
      .insertInto('cursors')
      .values({ pool: cursorPool, nextKey: keyOf(next) })
      .onConflict((oc) => oc.column('pool').doUpdateSet({ nextKey: keyOf(next) }))
      .execute();
    return n;
  }

  private async scan(pool: string, from: bigint, hi: bigint): Promise<bigint | null> {
    let at = from;
    for (;;) {
      const rows = await this.db
        .selectFrom('allocations')
        .select('key')
        .where('pool', '=', pool)
        .where('key', '>=', keyOf(at))
        .where('key', '<=', keyOf(hi))
        .orderBy('key')
        .limit(SCAN_BATCH)
        .execute();
      const taken = rows.map((r) => fromKey(r.key));
      const gap = firstGap(at, hi, taken, rows.length < SCAN_BATCH);
      if (gap !== null) return gap;
      if (rows.length < SCAN_BATCH) return null;
      at = (taken[taken.length - 1] as bigint) + 1n;
      if (at > hi) return null;
    }
  }

  /** Takes a specific number; E_CONFLICT (naming `what`) if it is taken. */
  async claim(pool: string, n: bigint, owner: string, what: string, field: string): Promise<void> {
    const taken = await this.db.selectFrom('allocations').select('owner').where('pool', '=', pool).where('key', '=', keyOf(n)).executeTakeFirst();
    if (taken) throw conflict(`${what} is already in use`, field);
    await this.insert('allocations', { pool, key: keyOf(n), owner });
  }

  async release(pool: string, n: bigint): Promise<void> {
    await this.db.deleteFrom('allocations').where('pool', '=', pool).where('key', '=', keyOf(n)).execute();
  }

  async allocationCount(): Promise<{ pool: string; n: number }[]> {
    const rows = await this.db
      .selectFrom('allocations')
      .select(['pool', sql<number>`count(*)`.as('n')])
      .groupBy('pool')
      .execute();
    return rows.map((r) => ({ pool: r.pool, n: Number(r.n) }));
  }

  /** Ports joined with what a PortMapping needs: network kind and VNI, host and underlay. */
  private mappings() {
    return this.db
      .selectFrom('ports as p')
      .innerJoin('networks as n', 'n.id', 'p.networkId')
      .innerJoin('instances as i', 'i.id', 'p.instanceId')
      .innerJoin('hosts as h', 'h.id', 'i.hostId')
      .select(PORT_MAPPING_SELECT);
  }

  /**
   * One page of every overlay and routed port with what the mapping index
   * needs (VNI, host, underlay), by port id: the index's initial load.
   */
  async portMappingsAfter(afterId: string, limit: number): Promise<PortMapping[]> {
    return (await this.mappings().where('p.id', '>', afterId).orderBy('p.id').limit(limit).execute()) as PortMapping[];
  }

  /** Port mappings of the ports on `hostId` and of every port on `vnis`. */
  async portMappingsFor(hostId: string, vnis: number[]): Promise<PortMapping[]> {
    return (await this.mappings()
      .where((eb) => (vnis.length > 0 ? eb.or([eb('i.hostId', '=', hostId), eb('n.vni', 'in', vnis)]) : eb('i.hostId', '=', hostId)))
      .orderBy('p.id')
      .execute()) as PortMapping[];
  }

  /** The networks of a host's own ports and the VIPs with a backend on it. */
  async hostHoldings(hostId: string): Promise<{ networkIds: string[]; vipIds: string[] }> {
    const ports = await this.db
      .selectFrom('ports as p')
      .innerJoin('instances as i', 'i.id', 'p.instanceId')
      .select(['p.id', 'p.networkId'])
      .where('i.hostId', '=', hostId)
      .execute();
    const vips = ports.length
      ? await this.db
          .selectFrom('vipBackends')
          .select('vipId')
          .distinct()
          .where(
            'portId',
            'in',
            ports.map((p) => p.id as string),
          )
          .execute()
      : [];
    return { networkIds: [...new Set(ports.map((p) => p.networkId as string))], vipIds: vips.map((v) => v.vipId as string) };
  }

  /** Hosts the operator made SVP clients: the only ones that get shoot-downs. */
  async svpClients(): Promise<Set<string>> {
    const rows = await this.db.selectFrom('hosts').select('id').where('svpClient', '=', 1).execute();
    return new Set(rows.map((r) => r.id as string));
  }

  /** Inserts rows in one statement (at most 500 per statement). */
  async insertMany<T extends Table>(table: T, rows: DB[T][]): Promise<void> {
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      await guard(() =>
        this.db
          .insertInto(table as string)
          .values(chunk)
          .execute(),
      );
    }
  }

  /** Hosts with at least one port on this network. */
  async hostsOnNetwork(networkId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('ports')
      .innerJoin('instances', 'instances.id', 'ports.instanceId')
      .select('instances.hostId')
      .distinct()
      .where('ports.networkId', '=', networkId)
      .execute();
    return rows.map((r) => r.hostId as string);
  }

  /** A host's pending shoot-downs, oldest first. */
  async shootdownsOf(hostId: string, limit: number): Promise<ShootdownRow[]> {
    return (await this.db
      .selectFrom('shootdowns')
      .selectAll()
      .where('hostId', '=', hostId)
      .orderBy('version')
      .orderBy('idx')
      .limit(limit)
      .execute()) as ShootdownRow[];
  }

  /** Removes shoot-downs by id of these hosts only (a host's LOG_RM); ids that are gone already, or another host's, are left alone. */
  async removeShootdowns(ids: string[], hostIds: string[]): Promise<void> {
    if (ids.length === 0 || hostIds.length === 0) return;
    await this.db.deleteFrom('shootdowns').where('id', 'in', ids).where('hostId', 'in', hostIds).execute();
  }

  // --- change log -------------------------------------------------------

  /**
   * Appends a change at the next version. Called only under the write lock,
   * which is held until commit: versions are gap-free and commit in order.
   * `actor` is the token whose request made it (null: none, e.g. `--db`);
   * it is kept beside the payload, which followers read without it.
   */
  async appendChange(c: Change, at: string, actor: ChangeActor | null): Promise<number> {
    if (this.head === null) this.head = await this.headVersion();
    const version = this.head + 1;
    await this.insert('changes', {
      version,
      kind: c.kind,
      entityId: changeEntity(c),
      vni: changeVni(c),
      at,
      payload: JSON.stringify(c),
      actorTokenId: actor?.tokenId ?? null,
      actorName: actor?.name ?? null,
    });
    this.head = version;
    this.appended.push({ ...c, version, at });
    return version;
  }

  async headVersion(): Promise<number> {
    const r = await this.db.selectFrom('changes').select(sql<number | null>`max(version)`.as('v')).executeTakeFirst();
    return r?.v == null ? 0 : Number(r.v);
  }

  async changesSince(after: number, limit: number): Promise<LoggedChange[]> {
    const rows = await this.db
      .selectFrom('changes')
      .select(['version', 'at', 'payload'])
      .where('version', '>', after)
      .orderBy('version')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ ...(JSON.parse(r.payload) as Change), version: Number(r.version), at: r.at }));
  }

  /** A page of the log with who made each change, in either order (the audit trail; followers use changesSince). */
  async changeLog(q: ChangeLogReq): Promise<AuditedChange[]> {
    let query = this.db.selectFrom('changes').select(['version', 'at', 'payload', 'actorTokenId', 'actorName']).where('version', '>', q.after);
    if (q.before !== null) query = query.where('version', '<', q.before);
    const rows = await query.orderBy('version', q.order).limit(q.limit).execute();
    return rows.map((r) => ({
      ...(JSON.parse(r.payload) as Change),
      version: Number(r.version),
      at: r.at,
      // Both or neither are set (appendChange); a name alone would be a half-told actor.
      actor: r.actorTokenId === null || r.actorName === null ? null : { tokenId: r.actorTokenId, name: r.actorName },
    }));
  }
}

/** Turns a unique-constraint violation that slipped past the core's checks into E_CONFLICT. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as { code?: string; message?: string; constraint?: string; detail?: string };
    if (err.code === '23505' || err.code === 'SQLITE_CONSTRAINT_UNIQUE' || err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      throw conflict(`already exists: ${err.detail ?? err.message ?? 'unique constraint'}`);
    }
    if (err.code === '23503' || err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      throw conflict(`still referenced by other objects: ${err.detail ?? err.message ?? 'foreign key'}`);
    }
    throw e;
  }
}
