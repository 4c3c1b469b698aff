// Request and response shapes of the REST API (TypeBox: JSON Schema that is
// also a TypeScript type). Shape only; meaning (CIDRs, ranges, uniqueness)
// is checked in the core, so the CLI and API share one set of rules. The
// entities the API returns are defined once, in model/schema.ts.
import { type Static, Type as T, type TSchema } from '@sinclair/typebox';
import {
  HealthCheckType,
  Host,
  HostState,
  ImportPolicy,
  Instance,
  InstanceState,
  instanceProps,
  MaxPrefixAction,
  Network,
  NetworkKind,
  Nullable,
  Peer,
  Port,
  Rack,
  Resources,
  ResourcesIn,
  Role,
  Site,
  Tenant,
  Token,
  Vip,
} from '../model/schema.js';

export { Host, Instance, Network, Peer, Port, Rack, Site, Tenant, Token, Vip };

const strict = { additionalProperties: false };
/** No control characters (NUL among them, which PostgreSQL refuses) in any text we take. */
export const NO_CONTROL = '^[^\\x00-\\x1f\\x7f]*$';
const Str = T.String({ maxLength: 256, pattern: NO_CONTROL });
const Ref = T.String({ minLength: 1, maxLength: 128, pattern: NO_CONTROL, description: 'an id, or a name where names are unique' });
export const QueryStr = T.String({ maxLength: 256, pattern: NO_CONTROL });

export const ApiError = T.Object({ code: T.String(), message: T.String(), field: T.Optional(T.String()) }, { $id: 'Error' });

export const SiteCreate = T.Object(
  {
    name: Str,
    underlayPool: T.Optional(Nullable(Str)),
    ipv4Pools: T.Optional(T.Array(Str, { maxItems: 64 })),
    ipv6Block: T.Optional(Nullable(Str)),
  },
  strict,
);

export const RackCreate = T.Object({ site: Ref, name: Str }, strict);

export const HostCreate = T.Object(
  {
    name: Str,
    site: Ref,
    rack: T.Optional(Nullable(Ref)),
    underlayIp: T.Optional(Str),
    asn: T.Optional(Nullable(T.Integer())),
    capacity: ResourcesIn,
    state: T.Optional(HostState),
    ipv6Prefix: T.Optional(Str),
  },
  strict,
);
export const HostPatch = T.Object(
  {
    state: T.Optional(HostState),
    capacity: T.Optional(ResourcesIn),
    asn: T.Optional(Nullable(T.Integer())),
    rack: T.Optional(Nullable(Ref)),
    underlayIp: T.Optional(Str),
  },
  strict,
);

export const TenantCreate = T.Object({ name: Str }, strict);

export const NetworkCreate = T.Object(
  {
    tenant: T.Optional(Ref),
    name: Str,
    kind: NetworkKind,
    vni: T.Optional(T.Integer()),
    subnets: T.Optional(T.Array(Str, { maxItems: 16 })),
    site: T.Optional(Ref),
    mtu: T.Optional(T.Integer()),
    arpRate: T.Optional(Nullable(T.Integer())),
    ndRate: T.Optional(Nullable(T.Integer())),
  },
  strict,
);
export const NetworkPatch = T.Object(
  {
    name: T.Optional(Str),
    mtu: T.Optional(T.Integer()),
    arpRate: T.Optional(Nullable(T.Integer())),
    ndRate: T.Optional(Nullable(T.Integer())),
  },
  strict,
);

const PortSpecProps = {
  network: Ref,
  mac: T.Optional(Str),
  ipv4: T.Optional(Nullable(Str)),
  ipv6: T.Optional(Nullable(Str)),
};
export const PortSpec = T.Object(PortSpecProps, strict);
export const PortCreate = T.Object({ instance: Ref, ...PortSpecProps }, strict);
export const PortPatch = T.Object({ ipv4: T.Optional(Nullable(Str)), ipv6: T.Optional(Nullable(Str)) }, strict);

export const InstanceWithPorts = T.Object({ ...instanceProps, ports: T.Array(T.Ref('Port')) }, { $id: 'InstanceWithPorts' });
export const InstanceCreate = T.Object(
  {
    tenant: T.Optional(Ref),
    name: Str,
    site: Ref,
    size: T.Optional(Str),
    cpus: T.Optional(T.Integer()),
    memoryMb: T.Optional(T.Integer()),
    diskGb: T.Optional(T.Integer()),
    host: T.Optional(Ref),
    state: T.Optional(InstanceState),
    ports: T.Optional(T.Array(PortSpec, { maxItems: 64 })),
  },
  strict,
);
export const InstancePatch = T.Object({ name: T.Optional(Str), state: T.Optional(InstanceState) }, strict);
export const Migrate = T.Object({ target: T.Optional(Ref) }, strict);

const HealthCheckIn = T.Object(
  {
    type: HealthCheckType,
    port: T.Integer(),
    path: T.Optional(Str),
    intervalMs: T.Optional(T.Integer()),
    timeoutMs: T.Optional(T.Integer()),
    rise: T.Optional(T.Integer()),
    fall: T.Optional(T.Integer()),
  },
  strict,
);
export const VipCreate = T.Object(
  {
    tenant: T.Optional(Ref),
    name: Str,
    site: T.Optional(Ref),
    address: T.Optional(Str),
    backends: T.Optional(T.Array(Ref, { maxItems: 1024 })),
    healthCheck: HealthCheckIn,
  },
  strict,
);
export const VipPatch = T.Object({ backends: T.Optional(T.Array(Ref, { maxItems: 1024 })), healthCheck: T.Optional(HealthCheckIn) }, strict);

const PeerProps = {
  neighbor: Str,
  remoteAsn: T.Integer(),
  importPolicy: T.Optional(ImportPolicy),
  maxPrefix: T.Optional(T.Integer()),
  maxPrefixAction: T.Optional(MaxPrefixAction),
  bfd: T.Optional(T.Boolean()),
  multiprotocol: T.Optional(T.Boolean()),
  description: T.Optional(Nullable(Str)),
};
export const PeerCreate = T.Object({ host: T.Optional(Ref), rack: T.Optional(Ref), ...PeerProps }, strict);
export const PeerPatch = T.Partial(T.Object(PeerProps, strict), strict);

export const TokenCreate = T.Object(
  {
    name: Str,
    role: Role,
    tenant: T.Optional(Ref),
    host: T.Optional(Ref),
  },
  strict,
);
export const TokenCreated = T.Object({ token: T.Ref('Token'), secret: T.String() });

export const Change = T.Object({ version: T.Integer(), at: T.String(), kind: T.String() }, { additionalProperties: true, $id: 'Change' });

export const Page = (item: TSchema) => T.Object({ items: T.Array(item), next: Nullable(T.String()) });
export const IdParam = T.Object({ id: Ref });

/** Schemas registered by $id, so responses and the OpenAPI document refer to them. */
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

/** A connected agent as the push stream sees it (GET /v1/agents). */
export const AgentStatus = T.Object({
  hostId: T.String(),
  connectedAt: T.String(),
  appliedVersion: T.Integer(),
  sentVersion: T.Integer(),
  lag: T.Integer(),
  routing: T.Union([AgentRouting, T.Null()]),
});
export type AgentStatus = Static<typeof AgentStatus>;

export const SHARED = [Resources, ApiError, Site, Rack, Host, Tenant, Network, Port, Instance, InstanceWithPorts, Vip, Peer, Token, Change];
