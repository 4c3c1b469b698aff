// Schema migrations, in order. Each runs once per database (Kysely's
// Migrator records them) and must work on SQLite and PostgreSQL alike.
import { createHmac, randomBytes } from 'node:crypto';
import { type Kysely, type Migration, type MigrationProvider, sql } from 'kysely';

const initial: Migration = {
  async up(db: Kysely<unknown>) {
    // (created_at columns are ISO-8601 text in both dialects)
    await db.schema
      .createTable('sites')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('underlay_pool', 'text')
      .addColumn('ipv4_pools', 'text', (c) => c.notNull())
      .addColumn('ipv6_block', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('racks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('racks_site_name', ['site_id', 'name'])
      .execute();
    await db.schema
      .createTable('hosts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addColumn('rack_id', 'text', (c) => c.references('racks.id'))
      .addColumn('underlay_ip', 'text', (c) => c.notNull().unique())
      .addColumn('asn', 'bigint')
      .addColumn('cpus', 'integer', (c) => c.notNull())
      .addColumn('memory_mb', 'integer', (c) => c.notNull())
      .addColumn('disk_gb', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('ipv6_prefix', 'text', (c) => c.unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('tenants')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('networks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('vni', 'integer', (c) => c.unique())
      .addColumn('subnets', 'text', (c) => c.notNull())
      .addColumn('site_id', 'text', (c) => c.references('sites.id'))
      .addColumn('mtu', 'integer', (c) => c.notNull())
      .addColumn('arp_rate', 'integer')
      .addColumn('nd_rate', 'integer')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('networks_tenant_name', ['tenant_id', 'name'])
      .execute();
    await db.schema
      .createTable('instances')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
      .addColumn('cpus', 'integer', (c) => c.notNull())
      .addColumn('memory_mb', 'integer', (c) => c.notNull())
      .addColumn('disk_gb', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('instances_tenant_name', ['tenant_id', 'name'])
      .execute();
    await db.schema.createIndex('instances_host').on('instances').column('host_id').execute();
    await db.schema
      .createTable('ports')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('instance_id', 'text', (c) => c.notNull().references('instances.id'))
      .addColumn('network_id', 'text', (c) => c.notNull().references('networks.id'))
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('mac', 'text', (c) => c.notNull().unique())
      .addColumn('ipv4', 'text')
      .addColumn('ipv6', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ports_instance').on('ports').column('instance_id').execute();
    await db.schema.createIndex('ports_network').on('ports').column('network_id').execute();
    await db.schema
      .createTable('vips')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('site_id', 'text', (c) => c.references('sites.id'))
      .addColumn('address', 'text', (c) => c.notNull().unique())
      .addColumn('health_check', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('vips_tenant_name', ['tenant_id', 'name'])
      .execute();
    await db.schema
      .createTable('vip_backends')
      .addColumn('vip_id', 'text', (c) => c.notNull().references('vips.id'))
      .addColumn('port_id', 'text', (c) => c.notNull().references('ports.id'))
      .addPrimaryKeyConstraint('vip_backends_pk', ['vip_id', 'port_id'])
      .execute();
    await db.schema.createIndex('vip_backends_port').on('vip_backends').column('port_id').execute();
    await db.schema
      .createTable('peers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('host_id', 'text', (c) => c.references('hosts.id'))
      .addColumn('rack_id', 'text', (c) => c.references('racks.id'))
      .addColumn('neighbor', 'text', (c) => c.notNull())
      .addColumn('remote_asn', 'bigint', (c) => c.notNull())
      .addColumn('import_policy', 'text', (c) => c.notNull())
      .addColumn('max_prefix', 'integer', (c) => c.notNull())
      .addColumn('bfd', 'integer', (c) => c.notNull())
      .addColumn('multiprotocol', 'integer', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.references('tenants.id'))
      .addColumn('host_id', 'text', (c) => c.references('hosts.id'))
      .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('allocations')
      .addColumn('pool', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('owner', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('allocations_pk', ['pool', 'key'])
      .execute();
    await db.schema.createIndex('allocations_owner').on('allocations').column('owner').execute();
    await db.schema
      .createTable('cursors')
      .addColumn('pool', 'text', (c) => c.primaryKey())
      .addColumn('next_key', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('changes')
      .addColumn('version', 'bigint', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('entity_id', 'text', (c) => c.notNull())
      .addColumn('vni', 'integer')
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('changes_vni').on('changes').columns(['vni', 'version']).execute();
  },
};

/**
 * Resources used per host as counters kept under the write lock, so that
 * placement reads one row per host instead of summing every instance.
 */
const hostUsage: Migration = {
  async up(db: Kysely<unknown>) {
    // One column per statement: SQLite's ALTER TABLE adds one at a time.
    for (const col of ['used_cpus', 'used_memory_mb', 'used_disk_gb'])
      await db.schema
        .alterTable('hosts')
        .addColumn(col, 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
    await sql`update hosts set
      used_cpus = coalesce((select sum(i.cpus) from instances i where i.host_id = hosts.id), 0),
      used_memory_mb = coalesce((select sum(i.memory_mb) from instances i where i.host_id = hosts.id), 0),
      used_disk_gb = coalesce((select sum(i.disk_gb) from instances i where i.host_id = hosts.id), 0)`.execute(db);
  },
};

/**
 * SVP shoot-downs: per host, what it must drop from its caches, kept until
 * the host removes them (LOG_RM), in the order the changes committed.
 */
const shootdowns: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('shootdowns')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('host_id', 'text', (c) => c.notNull())
      .addColumn('version', 'bigint', (c) => c.notNull())
      .addColumn('idx', 'integer', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('vni', 'integer', (c) => c.notNull())
      .addColumn('mac', 'text')
      .addColumn('ip', 'text')
      .execute();
    await db.schema.createIndex('shootdowns_host').on('shootdowns').columns(['host_id', 'version', 'idx']).execute();
  },
};

/**
 * Hosts that speak SVP's log protocol (varpd, or an agent in lazy mode):
 * only they get shoot-downs. Push-mode agents never remove entries, so
 * writing them entries would only grow the table.
 */
const svpClients: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('hosts')
      .addColumn('svp_client', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
  },
};

/** What a BGP session does when its peer sends more prefixes than `max_prefix`. */
const peerMaxPrefixAction: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('peers')
      .addColumn('max_prefix_action', 'text', (c) => c.notNull().defaultTo('restart'))
      .execute();
  },
};

/**
 * Per-tenant quotas set by an operator, one nullable column per kind (null:
 * the server's default). Use is counted from the rows themselves, under the
 * write lock, so there is no counter to drift.
 */
const tenantQuotas: Migration = {
  async up(db: Kysely<unknown>) {
    for (const col of ['quota_instances', 'quota_ports', 'quota_networks', 'quota_public_ipv4', 'quota_vips'])
      await db.schema.alterTable('tenants').addColumn(col, 'integer').execute();
  },
};

/**
 * The source addresses besides its underlay from which a host's SVP log may
 * be read and trimmed (JSON array of addresses). `svp_client` itself is set
 * by the operator from now on, no longer by a LOG_REQ: hosts it was set for
 * keep it (their lazy agents and varpd go on getting shoot-downs).
 */
const hostSvpClientAddresses: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('hosts')
      .addColumn('svp_client_addresses', 'text', (c) => c.notNull().defaultTo('[]'))
      .execute();
  },
};

/**
 * Tokens lose their plain SHA-256: each row gets a random salt, its hash
 * becomes the HMAC (keyed by the salt) of that SHA-256, and 12 hex digits of
 * the SHA-256 stay as an indexed lookup key (core/tokens.ts). Old rows are
 * converted here, so every secret handed out before keeps working and no
 * row keeps a hash that can be checked against a guess without its salt.
 * Also: an optional expiry, and when the token was last used. The hash is
 * spelled out here rather than imported: a migration stays what it was when
 * it shipped, whatever core/tokens.ts becomes (which must match it today;
 * test/security/secrets.test.ts checks an old row still authenticates).
 */
const tokenSalts: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('tokens').addColumn('salt', 'text').execute();
    await db.schema.alterTable('tokens').addColumn('lookup', 'text').execute();
    await db.schema.alterTable('tokens').addColumn('expires_at', 'text').execute();
    await db.schema.alterTable('tokens').addColumn('last_used_at', 'text').execute();
    // Aliases without underscores: the dialects' camel-case plugin renames the others.
    const rows = await sql<{ i: string; h: string }>`select id as i, secret_hash as h from tokens`.execute(db);
    for (const r of rows.rows) {
      const salt = randomBytes(16).toString('hex');
      const hash = createHmac('sha256', Buffer.from(salt, 'hex')).update(r.h).digest('hex');
      await sql`update tokens set salt = ${salt}, lookup = ${r.h.slice(0, 12)}, secret_hash = ${hash} where id = ${r.i}`.execute(db);
    }
    await db.schema.createIndex('tokens_lookup').on('tokens').column('lookup').execute();
  },
};

/**
 * Who made each change: the id and the name (as it was then) of the token
 * whose request wrote it. Null for changes made without a token (tools
 * that open the store themselves with `--db`) and for every older row: nothing
 * recorded who made those, and nothing is guessed.
 */
const changeActors: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('changes').addColumn('actor_token_id', 'text').execute();
    await db.schema.alterTable('changes').addColumn('actor_name', 'text').execute();
  },
};

/**
 * VM profiles (issue 18): the image an instance's disk is made from, a
 * site's VM settings (JSON of what differs from the defaults; null: none),
 * and tenants' SSH public keys, named uniquely per tenant.
 */
const vmProfiles: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('instances').addColumn('image', 'text').execute();
    await db.schema.alterTable('sites').addColumn('vm', 'text').execute();
    await db.schema
      .createTable('ssh_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('fingerprint', 'text', (c) => c.notNull())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('ssh_keys_tenant_name', ['tenant_id', 'name'])
      .addUniqueConstraint('ssh_keys_tenant_fingerprint', ['tenant_id', 'fingerprint'])
      .execute();
  },
};

/**
 * Fabric routers (issue 16): the ToRs, spines and border routers whose
 * configs weft renders. Upstreams are JSON (an array of Upstream); the
 * sessions to hosts and between fabric routers are derived, not stored.
 */
const fabricRouters: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('routers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addColumn('rack_id', 'text', (c) => c.references('racks.id'))
      .addColumn('asn', 'bigint', (c) => c.notNull())
      .addColumn('bgp_router_id', 'text', (c) => c.notNull())
      .addColumn('loopback', 'text', (c) => c.notNull().unique())
      .addColumn('mgmt_address', 'text')
      .addColumn('platform', 'text', (c) => c.notNull())
      .addColumn('bfd', 'integer', (c) => c.notNull())
      .addColumn('max_prefix', 'integer', (c) => c.notNull())
      .addColumn('upstreams', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('routers_site').on('routers').column('site_id').execute();
  },
};

class StaticProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return {
      '0001-initial': initial,
      '0002-host-usage': hostUsage,
      '0003-shootdowns': shootdowns,
      '0004-svp-clients': svpClients,
      '0005-peer-max-prefix-action': peerMaxPrefixAction,
      '0007-tenant-quotas': tenantQuotas,
      '0008-host-svp-client-addresses': hostSvpClientAddresses,
      '0009-token-salts': tokenSalts,
      '0010-change-actors': changeActors,
      '0011-vm-profiles': vmProfiles,
      '0012-fabric-routers': fabricRouters,
    };
  }
}

export const migrations = new StaticProvider();
