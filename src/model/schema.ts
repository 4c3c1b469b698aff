// The one definition of each entity's shape as the API shows it, and of the
// change log's records (TypeBox: JSON Schema that is also a TypeScript type);
// model/types.ts and model/changes.ts derive their types from these.
import { type Static, Type as T, type TProperties, type TSchema } from '@sinclair/typebox';
import {
  HEALTH_CHECK_TYPES,
  HOST_STATES,
  IMPORT_POLICIES,
  INSTANCE_STATES,
  MAX_PREFIX_ACTIONS,
  NETWORK_KINDS,
  ROLES,
  ROUTER_PLATFORMS,
  ROUTER_ROLES,
} from './types.js';

export const Nullable = <S extends TSchema>(s: S) => T.Union([s, T.Null()]);

/** One of these strings, as a union of literals (what request bodies are checked against). */
const OneOf = <const V extends string>(values: readonly V[]) => T.Union(values.map((v) => T.Literal(v)));

/**
 * A field the API shows as a plain string whose values are those of `e`:
 * the type is the enumeration, the schema (OpenAPI, the response
 * serializer) a string, as it always was. Request bodies use `e` itself.
 */
const Shown = <E extends TSchema>(_e: E) => T.Unsafe<Static<E>>(T.String());

/** A `$ref` to a registered schema, typed as that schema. */
const RefTo = <S extends TSchema>(s: S) => T.Unsafe<Static<S>>(T.Ref(s.$id as string));

/** These properties of `props`, in this order. */
const pick = <P extends TProperties, const K extends readonly (keyof P)[]>(props: P, keys: K): Pick<P, K[number]> =>
  Object.fromEntries(keys.map((k) => [k, props[k]])) as Pick<P, K[number]>;

// --- enumerations (the value lists themselves live in model/types.ts) ----

export const HostState = OneOf(HOST_STATES);
export const NetworkKind = OneOf(NETWORK_KINDS);
export const InstanceState = OneOf(INSTANCE_STATES);
export const Role = OneOf(ROLES);
export const ImportPolicy = OneOf(IMPORT_POLICIES);
export const MaxPrefixAction = OneOf(MAX_PREFIX_ACTIONS);
export const HealthCheckType = OneOf(HEALTH_CHECK_TYPES);
export const RouterRole = OneOf(ROUTER_ROLES);
export const RouterPlatform = OneOf(ROUTER_PLATFORMS);

// --- entities ------------------------------------------------------------

const resourceProps = { cpus: T.Integer(), memoryMb: T.Integer(), diskGb: T.Integer() };
export const Resources = T.Object(resourceProps, { additionalProperties: false, $id: 'Resources' });
/** The same shape inline, for request bodies (a $ref would lose its static type). */
export const ResourcesIn = T.Object(resourceProps, { additionalProperties: false });

/** A site's settings for its VMs' profiles (model/profile.ts VmSettings, VM_DEFAULTS). */
export const VmSettings = T.Object(
  {
    imagePool: Nullable(T.String({ description: 'a libvirt storage pool whose volume named by the image is the disk; null: a file from imagePath' })),
    imagePath: T.String({ description: 'the disk file when imagePool is null; {image} and {instance} are replaced' }),
    dnsServers: T.Array(T.String(), { description: "the guests' resolvers (at most 3)" }),
    arpTimeoutMs: T.Integer({ description: "the guests' net.ipv4.neigh.default.base_reachable_time_ms" }),
    ndTimeoutMs: T.Integer({ description: "the guests' net.ipv6.neigh.default.base_reachable_time_ms" }),
    sharedStorage: T.Boolean({ description: 'instance disks are on shared storage: moves are live migrations' }),
    migrationUri: T.String({
      description: "the libvirt URI a live migration goes to (sharedStorage): {address} is the destination host's underlay address, {host} its name",
    }),
  },
  { $id: 'VmSettings' },
);

export const Site = T.Object(
  {
    id: T.String(),
    name: T.String(),
    // Underlay range hosts' underlay IPs are taken from when not given.
    underlayPool: Nullable(T.String()),
    // Public IPv4 ranges (CIDRs) for routed networks and VIPs.
    ipv4Pools: T.Array(T.String()),
    // IPv6 block from which each host gets a /64.
    ipv6Block: Nullable(T.String()),
    // What its VMs' profiles take from the site (model/profile.ts; defaults filled in).
    vm: RefTo(VmSettings),
    createdAt: T.String(),
  },
  { $id: 'Site' },
);

export const Rack = T.Object({ id: T.String(), siteId: T.String(), name: T.String(), createdAt: T.String() }, { $id: 'Rack' });

export const Host = T.Object(
  {
    id: T.String(),
    name: T.String(),
    siteId: T.String(),
    rackId: Nullable(T.String()),
    underlayIp: T.String(),
    asn: Nullable(T.Number()),
    capacity: RefTo(Resources),
    // What the instances placed on it use.
    used: RefTo(Resources),
    // The operator says it polls SVP's shoot-down log (varpd, or an agent in lazy mode): only then it gets shoot-downs.
    svpClient: T.Boolean(),
    // Source addresses besides its underlay that may read and trim its shoot-down log (varpd on an admin network).
    svpClientAddresses: T.Array(T.String()),
    state: Shown(HostState),
    // The host's /64 from its site's IPv6 block (null when the site has none).
    ipv6Prefix: Nullable(T.String()),
    createdAt: T.String(),
  },
  { $id: 'Host' },
);

const quotaProps = <S extends TSchema>(s: () => S) => ({ instances: s(), ports: s(), networks: s(), publicIpv4: s(), vips: s() });
/** A tenant's own quotas as set by an operator; null: the server's default (--default-quota-*). */
export const TenantQuotas = T.Object(quotaProps(() => Nullable(T.Integer())));
/** A count per quota kind: the limits that apply, or what the tenant holds. */
export const QuotaCounts = T.Object(quotaProps(() => T.Integer()));

export const tenantProps = { id: T.String(), name: T.String(), quotas: TenantQuotas, createdAt: T.String() };
export const Tenant = T.Object(tenantProps, { $id: 'Tenant' });

export const Network = T.Object(
  {
    id: T.String(),
    tenantId: T.String(),
    name: T.String(),
    kind: Shown(NetworkKind),
    // VXLAN network identifier; overlay networks only.
    vni: Nullable(T.Integer()),
    // Overlay: the network's own IPv4/IPv6 subnets. Routed: empty (addresses come from the site).
    subnets: T.Array(T.String()),
    // Routed networks belong to a site; overlay networks span sites (null).
    siteId: Nullable(T.String()),
    mtu: T.Integer(),
    // Per-port ARP and NDP guard limits, packets per second (null: the agent's default).
    arpRate: Nullable(T.Integer()),
    ndRate: Nullable(T.Integer()),
    createdAt: T.String(),
  },
  { $id: 'Network' },
);

export const Port = T.Object(
  {
    id: T.String(),
    instanceId: T.String(),
    networkId: T.String(),
    tenantId: T.String(),
    mac: T.String(),
    ipv4: Nullable(T.String()),
    ipv6: Nullable(T.String()),
    /** The host-side interface its hypervisor creates (a tap or veth of this name), which the agent plugs and guards. */
    interface: T.String({ description: 'the host-side interface (tap or veth) the hypervisor creates for this port; the agent plugs and guards it' }),
    createdAt: T.String(),
  },
  { $id: 'Port' },
);

export const instanceProps = {
  id: T.String(),
  tenantId: T.String(),
  name: T.String(),
  siteId: T.String(),
  hostId: T.String(),
  size: RefTo(Resources),
  state: Shown(InstanceState),
  // The image its disk is made from (a volume of the site's imagePool, or a file); null: none yet, and no profile.
  image: Nullable(T.String()),
  createdAt: T.String(),
};
export const Instance = T.Object(instanceProps, { $id: 'Instance' });

export const HealthCheck = T.Object({
  type: Shown(HealthCheckType),
  port: T.Integer(),
  path: Nullable(T.String()),
  intervalMs: T.Integer(),
  timeoutMs: T.Integer(),
  rise: T.Integer(),
  fall: T.Integer(),
});

export const Vip = T.Object(
  {
    id: T.String(),
    tenantId: T.String(),
    name: T.String(),
    siteId: Nullable(T.String()),
    address: T.String(),
    backends: T.Array(T.String()),
    healthCheck: HealthCheck,
    createdAt: T.String(),
  },
  { $id: 'Vip' },
);

export const Peer = T.Object(
  {
    id: T.String(),
    // Exactly one of hostId and rackId is set: the session is per host or for every host of a rack.
    hostId: Nullable(T.String()),
    rackId: Nullable(T.String()),
    neighbor: T.String(),
    remoteAsn: T.Number(),
    importPolicy: Shown(ImportPolicy),
    maxPrefix: T.Integer(),
    // disable: shut the session until an operator enables it; restart: reset it (BIRD retries); block: keep it, drop the excess; warn: log only.
    maxPrefixAction: Shown(MaxPrefixAction),
    bfd: T.Boolean(),
    // Both address families on this one session (e.g. IPv4 over an IPv6 session).
    multiprotocol: T.Boolean(),
    description: Nullable(T.String()),
    createdAt: T.String(),
  },
  { $id: 'Peer' },
);

/** A session of a border router to a router outside the fabric (a transit or the WAN): not derivable, so explicit. */
export const Upstream = T.Object(
  {
    // Names the session in the rendered config: 1..32 of [a-z0-9_], a letter first.
    name: T.String(),
    neighbor: T.String(),
    remoteAsn: T.Number(),
    // The most routes it may send (all of them counted, filtered or not); past it the session is reset.
    maxPrefix: T.Integer(),
    bfd: T.Boolean(),
    description: Nullable(T.String()),
  },
  { $id: 'Upstream' },
);

export const Router = T.Object(
  {
    id: T.String(),
    name: T.String(),
    // tor: a rack's (rackId set); spine: a site's; border: a site's way out (its upstreams).
    role: Shown(RouterRole),
    siteId: T.String(),
    rackId: Nullable(T.String()),
    asn: T.Number(),
    // BGP router id: a nonzero IPv4 address.
    bgpRouterId: T.String(),
    // The address its fabric neighbours (spines, ToRs, borders) peer with; its own sessions to them come from it.
    loopback: T.String(),
    // Where Weft reaches it (docs/fabric.md); comments only in its config.
    mgmtAddress: Nullable(T.String()),
    platform: Shown(RouterPlatform),
    // BFD on its sessions to other fabric routers (host sessions follow the hosts' peers).
    bfd: T.Boolean(),
    // The most routes each session from below (a host, a ToR, a spine) may send.
    maxPrefix: T.Integer(),
    upstreams: T.Array(RefTo(Upstream)),
    createdAt: T.String(),
  },
  { $id: 'Router' },
);

export const Token = T.Object(
  {
    id: T.String(),
    name: T.String(),
    role: Shown(Role),
    tenantId: Nullable(T.String()),
    hostId: Nullable(T.String()),
    createdAt: T.String(),
    /** When it stops working (ISO 8601), or null: never. */
    expiresAt: Nullable(T.String()),
    /** When it was last used, to within a minute, or null: never. */
    lastUsedAt: Nullable(T.String()),
  },
  { $id: 'Token' },
);

export const SshKey = T.Object(
  {
    id: T.String(),
    tenantId: T.String(),
    name: T.String(),
    // The key's algorithm, as in its text: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa...
    type: T.String(),
    // As ssh-keygen -l shows it: SHA256: and the unpadded base64 of the key blob's SHA-256.
    fingerprint: T.String(),
    // OpenSSH one-line form: type, base64 blob and comment.
    publicKey: T.String(),
    createdAt: T.String(),
  },
  { $id: 'SshKey' },
);

// --- the change log's records (store/records.ts builds them) ---------------

/** Where a port is and what it answers to: the unit of the mapping service. */
export const PortMapping = T.Object({
  portId: T.String(),
  instanceId: T.String(),
  tenantId: T.String(),
  networkId: T.String(),
  networkKind: NetworkKind,
  // Null for routed networks.
  vni: Nullable(T.Integer()),
  mac: T.String(),
  ipv4: Nullable(T.String()),
  ipv6: Nullable(T.String()),
  hostId: T.String(),
  // The host's underlay (VTEP) address.
  underlayIp: T.String(),
});

export const HostInfo = T.Object({
  hostId: T.String(),
  ...pick(Host.properties, ['name', 'siteId', 'rackId', 'underlayIp', 'asn']),
  // The state as stored: agents take it as text.
  state: T.String(),
  ipv6Prefix: Host.properties.ipv6Prefix,
  // Who may read and trim its SVP shoot-down log (the mapping index binds LOG_REQ/LOG_RM to these).
  // Always built (store/records.ts); absent only in changes logged before migration 0008: not a client.
  svpClient: T.Optional(Host.properties.svpClient),
  svpClientAddresses: T.Optional(Host.properties.svpClientAddresses),
});

export const NetworkInfo = T.Object({
  networkId: T.String(),
  ...pick(Network.properties, ['tenantId', 'kind', 'vni', 'mtu', 'subnets', 'arpRate', 'ndRate']),
});

export const VipInfo = T.Object({
  vipId: T.String(),
  ...pick(Vip.properties, ['tenantId', 'address']),
  // Backend ports with the host each is on.
  backends: T.Array(T.Object({ portId: T.String(), hostId: T.String(), ipv4: Nullable(T.String()), ipv6: Nullable(T.String()) })),
  // The VIP's health check as stored; agents read the fields they know.
  healthCheck: T.Unknown(),
});

export const PeerInfo = T.Object({
  peerId: T.String(),
  ...pick(Peer.properties, ['hostId', 'rackId', 'neighbor', 'remoteAsn']),
  // As stored: agents check the values they act on.
  importPolicy: T.String(),
  maxPrefix: Peer.properties.maxPrefix,
  maxPrefixAction: T.String(),
  ...pick(Peer.properties, ['bfd', 'multiprotocol']),
});

/**
 * A VM's record for its host's agent: the instance, where and in what state
 * it should run, and what its profile is rendered from (core/profiles.ts
 * profileInput; model/profile.ts ProfileInput), or null when it has no
 * image yet. The agent renders the profile itself, with its own directory
 * for the console socket and the seed.
 */
export const InstanceInfo = T.Object({
  instanceId: T.String(),
  ...pick(Instance.properties, ['tenantId', 'name', 'hostId']),
  state: T.String(),
  // ProfileInput; agents check it as they render (model/profile-render.ts checks every field it uses).
  profile: T.Unknown(),
  // Its host's libvirt URI for live migrations to it (its site has sharedStorage), else null (moves are cold).
  // Optional: a server older than it sends none, which agents read as null.
  migrationUri: T.Optional(Nullable(T.String())),
});

/** A fabric router as the change log records it. */
export const RouterInfo = T.Object({
  routerId: T.String(),
  ...pick(Router.properties, ['name']),
  // As stored.
  role: T.String(),
  ...pick(Router.properties, ['siteId', 'rackId', 'asn']),
  platform: T.String(),
});

/** A router whose rendered config a change altered, by id and name. */
export const AffectedRouter = T.Object({ routerId: T.String(), name: T.String() });

/** A deleted token, as the change log tells the stream servers to end its sessions: never its secret or hash. */
export const TokenInfo = T.Object({
  tokenId: T.String(),
  ...pick(Token.properties, ['name', 'role', 'tenantId', 'hostId']),
});

/**
 * Who made a change: the token whose request wrote it, by id and by its
 * name then. Null for changes made without a token (tools that open the
 * store themselves with `--db`) and for rows older than migration 0010.
 */
export const ChangeActor = T.Object({ tokenId: T.String(), name: T.String() }, { additionalProperties: false });

/** What a change is about, as GET /v1/changes names it; never stored (model/changes.ts derives it). */
export const ChangeObject = T.Object(
  {
    kind: T.String({ description: 'port, host, network, vip, peer, token, instance, router or fabric' }),
    id: T.String(),
    name: Nullable(T.String({ description: "its name (a port's MAC, a peer's neighbor address); null when the log no longer knows it" })),
  },
  { additionalProperties: false },
);
