// What the use cases take, as schemas: the API checks request bodies
// against them (shape only; meaning such as CIDRs, ranges and uniqueness is
// checked in the core) and core/ takes their Static<> types as its inputs.
import { Type as T } from '@sinclair/typebox';
import {
  HealthCheckType,
  HostState,
  ImportPolicy,
  InstanceState,
  MaxPrefixAction,
  NetworkKind,
  Nullable,
  ResourcesIn,
  Role,
  RouterPlatform,
  RouterRole,
} from './schema.js';
import { MAX_SVP_CLIENT_ADDRESSES } from './validate.js';

const strict = { additionalProperties: false };

/** No control characters (NUL among them, which PostgreSQL refuses) in any text we take. */
export const NO_CONTROL = '^[^\\x00-\\x1f\\x7f]*$';
export const Str = T.String({ maxLength: 256, pattern: NO_CONTROL });
export const Ref = T.String({ minLength: 1, maxLength: 128, pattern: NO_CONTROL, description: 'an id, or a name where names are unique' });

/** A site's VM settings (model/profile.ts): what is given replaces the default, or what the site had. */
export const VmSettingsIn = T.Object(
  {
    imagePool: T.Optional(Nullable(Str)),
    imagePath: T.Optional(Str),
    dnsServers: T.Optional(T.Array(Str, { maxItems: 8 })),
    arpTimeoutMs: T.Optional(T.Integer()),
    ndTimeoutMs: T.Optional(T.Integer()),
    sharedStorage: T.Optional(T.Boolean()),
    migrationUri: T.Optional(Str),
  },
  strict,
);

export const SiteCreate = T.Object(
  {
    name: Str,
    underlayPool: T.Optional(Nullable(Str)),
    ipv4Pools: T.Optional(T.Array(Str, { maxItems: 64 })),
    ipv6Block: T.Optional(Nullable(Str)),
    vm: T.Optional(VmSettingsIn),
  },
  strict,
);
/** Operators only: the site's VM settings, each absent one kept. */
export const SitePatch = T.Object({ vm: T.Optional(VmSettingsIn) }, strict);

export const RackCreate = T.Object({ site: Ref, name: Str }, strict);

const svpClientProps = {
  svpClient: T.Optional(T.Boolean()),
  svpClientAddresses: T.Optional(T.Array(Str, { maxItems: MAX_SVP_CLIENT_ADDRESSES })),
};

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
    ...svpClientProps,
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
    ...svpClientProps,
  },
  strict,
);

export const TenantCreate = T.Object({ name: Str }, strict);
/** Operators only. Each quota: a number, null for the server's default, absent to keep it. */
export const TenantPatch = T.Object(
  {
    quotas: T.Optional(
      T.Object(
        {
          instances: T.Optional(Nullable(T.Integer())),
          ports: T.Optional(Nullable(T.Integer())),
          networks: T.Optional(Nullable(T.Integer())),
          publicIpv4: T.Optional(Nullable(T.Integer())),
          vips: T.Optional(Nullable(T.Integer())),
        },
        strict,
      ),
    ),
  },
  strict,
);

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
  // Absent: allocate if the network has a subnet of that family. null: none.
  ipv4: T.Optional(Nullable(Str)),
  ipv6: T.Optional(Nullable(Str)),
};
export const PortSpec = T.Object(PortSpecProps, strict);
export const PortCreate = T.Object({ instance: Ref, ...PortSpecProps }, strict);
export const PortPatch = T.Object({ ipv4: T.Optional(Nullable(Str)), ipv6: T.Optional(Nullable(Str)) }, strict);

export const InstanceCreate = T.Object(
  {
    tenant: T.Optional(Ref),
    name: Str,
    site: Ref,
    size: T.Optional(Str),
    cpus: T.Optional(T.Integer()),
    memoryMb: T.Optional(T.Integer()),
    diskGb: T.Optional(T.Integer()),
    // Pin to a host (operators only); otherwise placement chooses.
    host: T.Optional(Ref),
    state: T.Optional(InstanceState),
    // The image its disk is made from (model/profile.ts checkImage); without one it has no profile.
    image: T.Optional(Nullable(Str)),
    ports: T.Optional(T.Array(PortSpec, { maxItems: 64 })),
  },
  strict,
);
export const InstancePatch = T.Object({ name: T.Optional(Str), state: T.Optional(InstanceState), image: T.Optional(Nullable(Str)) }, strict);
export const Migrate = T.Object({ target: T.Optional(Ref) }, strict);

export const HealthCheckIn = T.Object(
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

export const UpstreamIn = T.Object(
  {
    name: Str,
    neighbor: Str,
    remoteAsn: T.Integer(),
    maxPrefix: T.Optional(T.Integer()),
    bfd: T.Optional(T.Boolean()),
    description: T.Optional(Nullable(Str)),
  },
  strict,
);

const RouterProps = {
  asn: T.Integer(),
  bgpRouterId: Str,
  loopback: Str,
  mgmtAddress: T.Optional(Nullable(Str)),
  platform: T.Optional(RouterPlatform),
  bfd: T.Optional(T.Boolean()),
  maxPrefix: T.Optional(T.Integer()),
  upstreams: T.Optional(T.Array(UpstreamIn, { maxItems: 64 })),
};
export const RouterCreate = T.Object({ name: Str, role: RouterRole, site: Ref, rack: T.Optional(Nullable(Ref)), ...RouterProps }, strict);
/** Role, site and rack stay: a router that moves is another router. */
export const RouterPatch = T.Partial(T.Object({ name: Str, ...RouterProps }, strict), strict);

export const TokenCreate = T.Object(
  {
    name: Str,
    role: Role,
    tenant: T.Optional(Ref),
    host: T.Optional(Ref),
    /** When it stops working: an ISO 8601 time in the future. */
    expiresAt: T.Optional(Str),
  },
  strict,
);

export const SshKeyCreate = T.Object(
  {
    tenant: T.Optional(Ref),
    name: Str,
    /** OpenSSH one-line form (model/ssh-key.ts). */
    publicKey: T.String({ maxLength: 16384 }),
  },
  strict,
);
