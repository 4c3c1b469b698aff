// A VM's profile: what a hypervisor needs to run an instance the source of
// truth placed on it. The libvirt domain XML (its disk, one tap per port
// under the exact name the agent plugs, a serial console on a socket the
// agent knows) and a cloud-init NoCloud seed (meta-data, network-config
// version 2 with static addresses and no DHCP or RA, user-data with the
// tenant's SSH keys and the neighbour timeouts). Pure: rendered from one
// ProfileInput, golden-tested, and checked with libvirt's and cloud-init's
// own tools in test/integration/profile-tools.test.ts.
import type { NetworkKind } from './types.js';

/** A site's settings for its VMs' profiles (`site.vm`); VM_DEFAULTS fills what a site leaves out. */
export interface VmSettings {
  /**
   * Where a disk comes from: a volume named by the instance's image in this
   * libvirt storage pool, or (null) the file `imagePath` names.
   */
  imagePool: string | null;
  /** The disk's file when `imagePool` is null: `{image}` and `{instance}` (the instance id) are replaced. */
  imagePath: string;
  /** The guests' resolvers (IPv4 or IPv6 addresses), at most 3; none: the guest keeps its own. */
  dnsServers: string[];
  /** `net.ipv4.neigh.default.base_reachable_time_ms` in the guest: how long an ARP entry stays reachable. */
  arpTimeoutMs: number;
  /** `net.ipv6.neigh.default.base_reachable_time_ms` in the guest: the same for NDP. */
  ndTimeoutMs: number;
  /** The site's instance disks are on shared storage: a move is a live migration, not a cold one. */
  sharedStorage: boolean;
}

/**
 * Long neighbour timeouts: a port keeps its MAC for life (a move keeps it
 * too), so a guest has little to re-learn, and fewer ARP and NDP probes
 * meet the guards' rate limits. Fosshost sets such timeouts in its guests.
 */
export const VM_DEFAULTS: VmSettings = {
  imagePool: null,
  imagePath: '/var/lib/weft/images/{image}.qcow2',
  dnsServers: [],
  arpTimeoutMs: 14_400_000,
  ndTimeoutMs: 14_400_000,
  sharedStorage: false,
};

/** One port of the instance, with what the guest's network config needs of its network. */
export interface ProfilePort {
  portId: string;
  mac: string;
  ipv4: string | null;
  ipv6: string | null;
  /** The host-side tap the agent plugs (model/ifname.ts portIfname). */
  ifname: string;
  network: {
    id: string;
    name: string;
    kind: NetworkKind;
    mtu: number;
    /** Overlay: the subnets the port's addresses are in (their prefix lengths are the guest's). Routed: empty. */
    subnets: string[];
    /** The default gateway the network offers, per family, or null (overlay networks have none yet). Routed networks: 169.254.0.1 and fe80::1, on-link. */
    gateway4: string | null;
    gateway6: string | null;
  };
}

export interface ProfileInput {
  instance: {
    id: string;
    name: string;
    tenantId: string;
    cpus: number;
    memoryMb: number;
    diskGb: number;
    /** The image its disk is made from; an instance without one has no profile. */
    image: string | null;
  };
  vm: VmSettings;
  /** In the order the guest should see them (eth0, eth1...): creation order. */
  ports: ProfilePort[];
  /** The tenant's SSH public keys (OpenSSH one-line form), in creation order. */
  sshKeys: string[];
  /** The unix socket of the serial console, which the agent attaches to. */
  consoleSocket: string;
}

export interface Profile {
  /** libvirt domain XML. */
  domain: string;
  /** cloud-init NoCloud `meta-data` (YAML). */
  metaData: string;
  /** cloud-init `network-config`, version 2 (YAML). */
  networkConfig: string;
  /** cloud-init `user-data` (`#cloud-config` YAML). */
  userData: string;
}

/** The parts as `weft instance profile --part` names them. */
export const PROFILE_PARTS = ['domain', 'meta-data', 'network-config', 'user-data'] as const;
export type ProfilePart = (typeof PROFILE_PARTS)[number];

/** Where the agent keeps an instance's files: domain.xml, seed.img, console.sock. */
export const instanceDir = (root: string, instanceId: string): string => `${root}/instances/${instanceId}`;
