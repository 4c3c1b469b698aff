// Entities of the source of truth, as the API shows them: types derived from
// their one definition in model/schema.ts, and the value lists, kept here
// free of TypeBox so that the agent can use them without loading it.
import type { Static } from '@sinclair/typebox';
import type * as S from './schema.js';

export const HOST_STATES = ['active', 'draining', 'down'] as const;
export type HostState = (typeof HOST_STATES)[number];

export const NETWORK_KINDS = ['overlay', 'routed'] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];

export const INSTANCE_STATES = ['running', 'stopped'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export const ROLES = ['admin', 'tenant', 'readonly', 'agent'] as const;
export type Role = (typeof ROLES)[number];

export const IMPORT_POLICIES = ['none', 'default', 'full'] as const;
export type ImportPolicy = (typeof IMPORT_POLICIES)[number];

/** What a BGP session does when its peer sends more prefixes than its limit (BIRD's `receive limit ... action`). */
export const MAX_PREFIX_ACTIONS = ['disable', 'restart', 'block', 'warn'] as const;
export type MaxPrefixAction = (typeof MAX_PREFIX_ACTIONS)[number];

export const HEALTH_CHECK_TYPES = ['tcp', 'http'] as const;
export type HealthCheckType = (typeof HEALTH_CHECK_TYPES)[number];

/** What a fabric router is: a rack's top-of-rack switch, a site's spine, or a border (WAN) router. */
export const ROUTER_ROLES = ['tor', 'spine', 'border'] as const;
export type RouterRole = (typeof ROUTER_ROLES)[number];

/** The routing software a fabric router runs: its config is rendered for it (model/fabric-bird.ts, fabric-frr.ts). */
export const ROUTER_PLATFORMS = ['bird', 'frr'] as const;
export type RouterPlatform = (typeof ROUTER_PLATFORMS)[number];

export const PLACEMENT_POLICIES = ['spread', 'pack'] as const;
export type PlacementPolicy = (typeof PLACEMENT_POLICIES)[number];

// Ids are UUIDs; names are unique in their scope (sites, hosts, tenants:
// cloud-wide; racks: per site; networks, instances, VIPs: per tenant).
export type Site = Static<typeof S.Site>;
export type Rack = Static<typeof S.Rack>;
export type Resources = Static<typeof S.Resources>;
export type Host = Static<typeof S.Host>;
export type Tenant = Static<typeof S.Tenant>;
export type Network = Static<typeof S.Network>;
export type Instance = Static<typeof S.Instance>;
export type Port = Static<typeof S.Port>;
export type HealthCheck = Static<typeof S.HealthCheck>;
export type Vip = Static<typeof S.Vip>;
export type Peer = Static<typeof S.Peer>;
export type Token = Static<typeof S.Token>;
export type SshKey = Static<typeof S.SshKey>;
export type Router = Static<typeof S.Router>;
export type Upstream = Static<typeof S.Upstream>;

/** A page of a list: `next` is the cursor to pass back, null on the last page. */
export interface Page<T> {
  items: T[];
  next: string | null;
}
