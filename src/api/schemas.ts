// Request and response shapes of the REST API (TypeBox: JSON Schema that is
// also a TypeScript type). Shape only; meaning (CIDRs, ranges, uniqueness)
// is checked in the core, so the CLI and API share one set of rules. The
// entities the API returns are defined once, in model/schema.ts, and the
// request bodies, which are the use cases' inputs, in model/inputs.ts.
import { type Static, Type as T, type TSchema } from '@sinclair/typebox';
import { ERROR_CODES, type ErrorCode } from '../model/errors.js';
import { NO_CONTROL, Ref } from '../model/inputs.js';
import {
  ChangeActor,
  ChangeObject,
  Host,
  Instance,
  instanceProps,
  Network,
  Nullable,
  Peer,
  Port,
  QuotaCounts,
  Rack,
  Resources,
  Router,
  Site,
  SshKey,
  Tenant,
  Token,
  tenantProps,
  Upstream,
  Vip,
  VmSettings,
} from '../model/schema.js';

export {
  HostCreate,
  HostPatch,
  InstanceCreate,
  InstancePatch,
  Migrate,
  NetworkCreate,
  NetworkPatch,
  NO_CONTROL,
  PeerCreate,
  PeerPatch,
  PortCreate,
  PortPatch,
  PortSpec,
  RackCreate,
  RouterCreate,
  RouterPatch,
  SiteCreate,
  SitePatch,
  SshKeyCreate,
  TenantCreate,
  TenantPatch,
  TokenCreate,
  VipCreate,
  VipPatch,
} from '../model/inputs.js';
export { Host, Instance, Network, Peer, Port, Rack, Router, Site, SshKey, Tenant, Token, Vip };

export const QueryStr = T.String({ maxLength: 256, pattern: NO_CONTROL });

export const ApiError = T.Object(
  {
    code: T.Unsafe<ErrorCode>({ type: 'string', enum: ERROR_CODES, description: 'Stable machine-readable code; its HTTP status is fixed per code' }),
    message: T.String({ description: 'Names the field, the bad value and what is allowed' }),
    field: T.Optional(T.String({ description: 'The offending field, as a dotted path (ports[0].ipv4)' })),
  },
  { $id: 'Error', additionalProperties: false },
);

export const InstanceWithPorts = T.Object({ ...instanceProps, ports: T.Array(T.Ref('Port')) }, { $id: 'InstanceWithPorts' });

/** A tenant with the limits that apply to it and what it holds (GET and PATCH /v1/tenants/{id}). */
export const TenantWithUsage = T.Object({ ...tenantProps, limits: QuotaCounts, usage: QuotaCounts }, { $id: 'TenantWithUsage' });

export const TokenCreated = T.Object({ token: T.Ref('Token'), secret: T.String() });

/**
 * A change-log entry: its place, who made it and what it is about, then the
 * payload's own fields by kind (docs/data-model.md, "The change log").
 */
export const Change = T.Object(
  {
    version: T.Integer(),
    at: T.String(),
    kind: T.String(),
    // The token whose request made the change, by id and its name then; null:
    // made without a token, or logged before migration 0010.
    actor: Nullable(ChangeActor),
    object: ChangeObject,
  },
  { additionalProperties: true, $id: 'Change' },
);

export const Page = (item: TSchema) => T.Object({ items: T.Array(item), next: Nullable(T.String()) });
export const IdParam = T.Object({ id: Ref });

/** An instance's profile (GET /v1/instances/{id}/profile): model/profile.ts. */
export const InstanceProfile = T.Object(
  {
    instanceId: T.String(),
    hostId: T.String(),
    domain: T.String({ description: 'libvirt domain XML' }),
    metaData: T.String({ description: 'cloud-init NoCloud meta-data (YAML)' }),
    networkConfig: T.String({ description: 'cloud-init network-config version 2 (YAML)' }),
    userData: T.String({ description: 'cloud-init user-data (#cloud-config YAML)' }),
  },
  { $id: 'InstanceProfile' },
);

/** An agent's report of its BGP sessions (GET /v1/agents). */
export const AgentRouting = T.Object({
  birdUp: T.Boolean(),
  inSync: T.Boolean(),
  lastError: Nullable(T.String()),
  sessions: T.Array(
    T.Object({
      peerId: Nullable(T.String()),
      neighbor: Nullable(T.String()),
      state: T.String(),
      established: T.Boolean(),
      since: T.String(),
      lastError: Nullable(T.String()),
      received: T.Integer(),
      accepted: T.Integer(),
      exported: T.Integer(),
    }),
  ),
  announced: T.Array(T.String()),
});

/** An agent's report of the local ports it keeps unplugged because their guard is not in place (GET /v1/agents). */
export const AgentGuards = T.Object({
  unguarded: T.Integer({ description: 'local ports kept unplugged: their guard is not in place' }),
  ports: T.Array(
    T.Object({
      portId: T.String(),
      ifname: T.String(),
      kind: T.Union([T.Literal('refused'), T.Literal('failed')], {
        description: "refused: the guard cannot be rendered from the port's record; failed: nft did not take it (the agent retries)",
      }),
      reason: T.String(),
    }),
    { description: 'the first 50 of them, by port id' },
  ),
});

/** An agent's report of the host's VMs (GET /v1/agents; agents started with --vm-dir). */
export const AgentVms = T.Object({
  running: T.Integer({ description: "the host's instances whose domain runs (as libvirt lists them)" }),
  stopped: T.Integer({ description: 'whose domain is defined and stopped' }),
  noImage: T.Integer({ description: 'without an image: no profile, left alone' }),
  failing: T.Array(T.Object({ instanceId: T.String(), reason: T.String() }), {
    description: 'instances the agent could not put in place (retried), the first 50',
  }),
});

/** A connected agent as the push stream sees it (GET /v1/agents). */
export const AgentStatus = T.Object({
  hostId: T.String(),
  connectedAt: T.String(),
  appliedVersion: T.Integer(),
  sentVersion: T.Integer(),
  lag: T.Integer(),
  routing: T.Union([AgentRouting, T.Null()]),
  /** Null until the agent reports (an agent older than the report sends none). */
  guards: T.Union([AgentGuards, T.Null()]),
  /** Null for an agent that does not manage VMs (or has not reported yet). */
  vms: T.Union([AgentVms, T.Null()]),
});
export type AgentStatus = Static<typeof AgentStatus>;

/** Schemas registered by $id, so responses and the OpenAPI document refer to them. */
export const SHARED = [
  Resources,
  VmSettings,
  ApiError,
  Site,
  Rack,
  Host,
  Tenant,
  TenantWithUsage,
  Network,
  Port,
  Instance,
  InstanceWithPorts,
  Vip,
  Peer,
  Upstream,
  Router,
  Token,
  SshKey,
  InstanceProfile,
  Change,
];
