// A VM's profile: what a hypervisor needs to run an instance the source of
// truth placed on it. The libvirt domain XML (its disk, one tap per port
// under the exact name the agent plugs, a serial console on a socket the
// agent knows) and a cloud-init NoCloud seed (meta-data, network-config
// version 2 with static addresses and no DHCP or RA, user-data with the
// tenant's SSH keys and the neighbour timeouts). Pure: rendered from one
// ProfileInput, golden-tested, and checked with libvirt's and cloud-init's
// own tools in test/integration/profile-tools.test.ts.
import type { Static } from '@sinclair/typebox';
import { parseIp } from './addr.js';
import { invalid } from './errors.js';
import type { VmSettings as VmSettingsSchema } from './schema.js';
import type { NetworkKind } from './types.js';

/** A site's settings for its VMs' profiles (`site.vm`); VM_DEFAULTS fills what a site leaves out. The fields are described in model/schema.ts. */
export type VmSettings = Static<typeof VmSettingsSchema>;

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
  migrationUri: 'qemu+tls://{address}/system',
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

/** Where agents keep instances' files by default (`weft agent --vm-dir`), and the root the API's profiles are rendered with. */
export const VM_ROOT = '/var/lib/weft';

/** Where the agent keeps an instance's files: domain.xml, seed.img, console.sock. */
export const instanceDir = (root: string, instanceId: string): string => `${root}/instances/${instanceId}`;

/**
 * An image name: it becomes part of a file path or a volume name on the
 * hypervisor, and tenants choose it, so no path can be made of it: letters,
 * digits, `.`, `_`, `+`, `-`, a letter or digit first, no `..`.
 */
export function checkImage(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/.test(value) || value.includes('..'))
    throw invalid(field, value, 'must be an image name: 1..128 of [A-Za-z0-9._+-], a letter or digit first, no ".." (e.g. debian-12)');
  return value;
}

/** A site's VmSettings with `patch` applied over `base` (VM_DEFAULTS, or what the site has), each field checked. */
export function checkVmSettings(field: string, patch: Partial<Record<keyof VmSettings, unknown>>, base: VmSettings = VM_DEFAULTS): VmSettings {
  const out: VmSettings = { ...base, dnsServers: [...base.dnsServers] };
  const f = (k: string) => `${field}.${k}`;
  for (const [k, val] of Object.entries(patch)) {
    if (val === undefined) continue;
    switch (k) {
      case 'imagePool':
        if (val !== null && (typeof val !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(val)))
          throw invalid(f(k), val, 'must be a libvirt storage pool name (1..64 of [A-Za-z0-9._-], a letter or digit first), or null for a file from imagePath');
        out.imagePool = val as string | null;
        break;
      case 'imagePath':
        if (typeof val !== 'string' || !/^\/[A-Za-z0-9._+/{}-]{1,255}$/.test(val) || /(^|\/)\.\.(\/|$)/.test(val) || /\{(?!image\}|instance\})/.test(val))
          throw invalid(
            f(k),
            val,
            'must be an absolute path of [A-Za-z0-9._+/-] with no ".." segment, where {image} and {instance} are replaced (e.g. /var/lib/weft/images/{image}.qcow2)',
          );
        out.imagePath = val;
        break;
      case 'dnsServers': {
        if (!Array.isArray(val) || val.length > 3) throw invalid(f(k), val, 'must be a list of at most 3 IPv4 or IPv6 addresses (a guest resolver reads 3)');
        out.dnsServers = val.map((a, i) => parseIp(`${f(k)}[${i}]`, a).text);
        if (new Set(out.dnsServers).size !== out.dnsServers.length) throw invalid(f(k), val, 'must not repeat an address');
        break;
      }
      case 'arpTimeoutMs':
      case 'ndTimeoutMs':
        // The kernel's base_reachable_time_ms: from 1 s up to a day.
        if (!Number.isInteger(val) || (val as number) < 1000 || (val as number) > 86_400_000)
          throw invalid(f(k), val, 'must be an integer number of milliseconds, 1000..86400000');
        out[k] = val as number;
        break;
      case 'sharedStorage':
        if (typeof val !== 'boolean') throw invalid(f(k), val, 'must be true or false');
        out.sharedStorage = val;
        break;
      case 'migrationUri':
        if (
          typeof val !== 'string' ||
          !/^qemu(\+(tls|ssh|tcp|libssh|libssh2))?:\/\/[A-Za-z0-9._~:@/?=&%{}[\]-]{1,240}$/.test(val) ||
          !/\{(address|host)\}/.test(val) ||
          /\{(?!address\}|host\})/.test(val)
        )
          throw invalid(
            f(k),
            val,
            'must be a libvirt qemu URI (qemu://, qemu+tls://, qemu+ssh://, ...) naming the destination by {address} (its underlay address) or {host} (its name), e.g. qemu+tls://{address}/system',
          );
        out.migrationUri = val;
        break;
      default:
        throw invalid(f(k), val, 'is not a VM setting; they are imagePool, imagePath, dnsServers, arpTimeoutMs, ndTimeoutMs, sharedStorage, migrationUri');
    }
  }
  return out;
}

/**
 * The libvirt URI live migrations to a host go to (pure): the site's
 * `migrationUri` with {address} its underlay address (in brackets when
 * IPv6) and {host} its name. Null unless the site's storage is shared.
 */
export function migrationUriOf(vm: VmSettings, host: { name: string; underlayIp: string }): string | null {
  if (!vm.sharedStorage) return null;
  const address = host.underlayIp.includes(':') ? `[${host.underlayIp}]` : host.underlayIp;
  return vm.migrationUri.replaceAll('{address}', address).replaceAll('{host}', host.name);
}

/** Refuses what is not a libvirt qemu URI (what a site's migrationUri renders to; the agent checks it before virsh sees it). */
export function checkMigrationUri(uri: string): void {
  if (typeof uri !== 'string' || !/^qemu(\+(tls|ssh|tcp|libssh|libssh2))?:\/\/[A-Za-z0-9._~:@/?=&%[\]-]{1,250}$/.test(uri))
    throw invalid('migration URI', uri, 'a libvirt qemu URI such as qemu+tls://192.0.2.10/system');
}
