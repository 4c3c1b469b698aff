// Renders a VM's profile (model/profile.ts) from its ProfileInput: the
// libvirt domain XML and the cloud-init NoCloud seed (meta-data,
// network-config v2, user-data). Pure and deterministic: the same input
// gives the same bytes (golden-tested in profile-render.test.ts, and every
// golden checked with libvirt's and cloud-init's own tools in
// test/integration/profile-tools.test.ts).
//
// Everything interpolated is checked first, so a bad input fails here with
// an error naming its field rather than as a domain libvirt refuses or a
// seed cloud-init half-applies. XML values are escaped; YAML strings are
// double-quoted, so no value reads as a YAML 1.1 boolean, number or
// sexagesimal (a MAC) to cloud-init's PyYAML.
import { posix } from 'node:path';
import { Scalar, stringify } from 'yaml';
import { cidrContains, parseCidr, parseIp, parseMac } from './addr.js';
import { invalid } from './errors.js';
import { isId } from './ids.js';
import { checkIfname } from './ifname.js';
import { checkImage, checkVmSettings, type Profile, type ProfileInput, type ProfilePort } from './profile.js';
import { int, MTU_MAX, MTU_MIN, name } from './validate.js';

export type DomainType = 'kvm' | 'qemu' | 'test';

export interface RenderOptions {
  /** libvirt's domain type: 'kvm' on a hypervisor; 'qemu' (emulation) or 'test' (virsh's test driver) in tests. */
  domainType?: DomainType;
}

/** The namespace of weft's `<metadata>` element in a domain. */
export const WEFT_XMLNS = 'https://weft.dev/xmlns/instance/1';

/** A routed guest's gateways, on-link (docs/routing.md "Routed ports"): the agent puts them on the host side of the tap. */
export const ROUTED_GATEWAY4 = '169.254.0.1';
export const ROUTED_GATEWAY6 = 'fe80::1';

/** At most this many resolvers (glibc uses the first three). */
export const MAX_DNS_SERVERS = 3;

const DOMAIN_TYPES: readonly DomainType[] = ['kvm', 'qemu', 'test'];

/** libvirt's domain name of an instance: unique on the host whatever the instance is called. */
export const domainName = (instanceId: string): string => `weft-${instanceId}`;

/** The NoCloud seed the agent writes: `seed.img` beside the console socket, in the instance's directory. */
export const seedPath = (consoleSocket: string): string => posix.join(posix.dirname(consoleSocket), 'seed.img');

/** The guest's name of the i-th port (creation order). */
export const guestIfname = (i: number): string => `eth${i}`;

/** Escapes a value for an XML attribute (either quote) or text. */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => XML_ENTITIES[c] as string);
}
const XML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' };

/**
 * The disk's file when the site has no storage pool: `vm.imagePath` with
 * `{image}` and `{instance}` replaced (a path without `{image}` is one file
 * for all images, which is allowed).
 */
export const diskFile = (imagePath: string, image: string, instanceId: string): string =>
  // One pass, by function: an image's own `{instance}` or `$&` stays as it is.
  imagePath.replace(/\{(image|instance)\}/g, (_, k: string) => (k === 'image' ? image : instanceId));

/** The instance's own disk, beside its console socket: a qcow2 overlay on the image, so no two VMs write one image file. */
export const DISK_FILE = 'disk.qcow2';

/**
 * Where an instance's disk comes from. `overlay` (a site without an image
 * pool): the agent makes `path`, a qcow2 whose backing file is `base`, the
 * image (qemu-img create -b), once; the domain writes only its overlay.
 * `volume`: the pool's volume named by the image, used as it is.
 */
export type DiskPlan =
  | { kind: 'overlay'; path: string; base: string; baseFormat: 'qcow2' | 'raw'; sizeGb: number }
  | { kind: 'volume'; pool: string; volume: string };

export function diskPlan(input: ProfileInput): DiskPlan {
  const { instance, vm } = input;
  const image = instance.image as string;
  if (vm.imagePool !== null) return { kind: 'volume', pool: vm.imagePool, volume: image };
  const base = diskFile(vm.imagePath, image, instance.id);
  return { kind: 'overlay', path: posix.join(posix.dirname(input.consoleSocket), DISK_FILE), base, baseFormat: diskFormat(base), sizeGb: instance.diskGb };
}

/** qcow2 for a name ending `.qcow2`, raw otherwise. */
const diskFormat = (name: string): 'qcow2' | 'raw' => (name.endsWith('.qcow2') ? 'qcow2' : 'raw');

/** One guest interface as the renderers need it, checked. */
interface GuestPort {
  guest: string;
  mac: string;
  ifname: string;
  mtu: number;
  /** CIDR form, IPv4 first. */
  addresses: string[];
  /** The IPv4 default route's gateway, on-link on a routed port. */
  gateway4: { via: string; onLink: boolean } | null;
  /** The IPv6 default route's gateway (routed: link-local, so on-link by nature). */
  gateway6: string | null;
}

/** Renders the four parts of an instance's profile. Throws E_INVALID_ARG naming the field of a bad input. */
export function renderProfile(input: ProfileInput, options: RenderOptions = {}): Profile {
  const domainType = options.domainType ?? 'kvm';
  if (!DOMAIN_TYPES.includes(domainType)) throw invalid('domainType', domainType, `must be one of ${DOMAIN_TYPES.join(', ')}`);
  const { instance, vm } = input;
  if (typeof instance.id !== 'string' || !isId(instance.id)) throw invalid('instance.id', instance.id, 'must be an id (a lowercase UUID)');
  if (typeof instance.tenantId !== 'string' || !isId(instance.tenantId))
    throw invalid('instance.tenantId', instance.tenantId, 'must be an id (a lowercase UUID)');
  name('instance.name', instance.name);
  if (instance.image === null) {
    throw invalid(
      'image',
      null,
      `instance ${instance.name} has no image: set one (weft instance update ${instance.name} --image NAME) before it can have a profile`,
    );
  }
  // Whoever sent the input, an image never makes a path: the agent checks what the server checked.
  checkImage('image', instance.image);
  int('instance.cpus', instance.cpus, 1, 4096);
  int('instance.memoryMb', instance.memoryMb, 1, 16 * 1024 * 1024);
  absPath('consoleSocket', input.consoleSocket);
  // The site's settings as the API takes them (no `..`, a pool name of safe characters).
  checkVmSettings('vm', { imagePool: vm.imagePool, imagePath: vm.imagePath });
  if (vm.imagePool === null) absPath('vm.imagePath', diskFile(vm.imagePath, instance.image, instance.id), vm.imagePath);
  if (!Array.isArray(vm.dnsServers) || vm.dnsServers.length > MAX_DNS_SERVERS) {
    throw invalid('vm.dnsServers', vm.dnsServers, `must be at most ${MAX_DNS_SERVERS} IPv4 or IPv6 addresses`);
  }
  const dns = vm.dnsServers.map((s, i) => parseIp(`vm.dnsServers[${i}]`, s).text);
  int('vm.arpTimeoutMs', vm.arpTimeoutMs, 1, 2 ** 31 - 1);
  int('vm.ndTimeoutMs', vm.ndTimeoutMs, 1, 2 ** 31 - 1);
  input.sshKeys.forEach((k, i) => {
    text(`sshKeys[${i}]`, k);
    if (k.trim() === '') throw invalid(`sshKeys[${i}]`, k, 'must be an OpenSSH public key on one line');
  });
  const ports = input.ports.map((p, i) => guestPort(p, i));
  return {
    domain: renderDomain(input, ports, domainType),
    metaData: yaml({ 'instance-id': instance.id, 'local-hostname': instance.name }),
    networkConfig: renderNetworkConfig(ports, dns),
    userData: renderUserData(input, ports),
  };
}

function guestPort(p: ProfilePort, i: number): GuestPort {
  const at = `ports[${i}]`;
  const mac = parseMac(`${at}.mac`, p.mac).text;
  const ifname = checkIfname(`${at}.ifname`, p.ifname);
  const mtu = int(`${at}.network.mtu`, p.network.mtu, MTU_MIN, MTU_MAX);
  const routed = p.network.kind === 'routed';
  if (!routed && p.network.kind !== 'overlay') throw invalid(`${at}.network.kind`, p.network.kind, 'must be overlay or routed');
  const subnets = routed ? [] : p.network.subnets.map((s, j) => parseCidr(`${at}.network.subnets[${j}]`, s));
  const addresses: string[] = [];
  let gateway4: GuestPort['gateway4'] = null;
  let gateway6: string | null = null;
  for (const [key, family] of [
    ['ipv4', 4],
    ['ipv6', 6],
  ] as const) {
    const value = p[key];
    if (value === null) continue;
    const ip = parseIp(`${at}.${key}`, value);
    if (ip.family !== family) throw invalid(`${at}.${key}`, value, `must be an IPv${family} address`);
    if (routed) {
      addresses.push(`${ip.text}/${family === 4 ? 32 : 128}`);
      if (family === 4) gateway4 = { via: ROUTED_GATEWAY4, onLink: true };
      else gateway6 = ROUTED_GATEWAY6;
      continue;
    }
    // The most specific subnet that holds it gives the guest its prefix length.
    const inside = subnets.filter((c) => cidrContains(c, family, ip.n));
    const best = inside.sort((a, b) => b.prefix - a.prefix)[0];
    if (!best) {
      const same = subnets.filter((c) => c.family === family).map((c) => c.text);
      throw invalid(
        `${at}.${key}`,
        value,
        `port ${p.portId} has an address in none of network ${p.network.name}'s IPv${family} subnets (${same.join(', ') || 'it has none'})`,
      );
    }
    addresses.push(`${ip.text}/${best.prefix}`);
    const gateway = family === 4 ? p.network.gateway4 : p.network.gateway6;
    if (gateway !== null) {
      const gw = parseIp(`${at}.network.gateway${family}`, gateway);
      if (gw.family !== family) throw invalid(`${at}.network.gateway${family}`, gateway, `must be an IPv${family} address`);
      if (family === 4) gateway4 = { via: gw.text, onLink: false };
      else gateway6 = gw.text;
    }
  }
  return { guest: guestIfname(i), mac, ifname, mtu, addresses, gateway4, gateway6 };
}

function renderDomain(input: ProfileInput, ports: GuestPort[], domainType: DomainType): string {
  const { instance } = input;
  const image = instance.image as string;
  const x = xmlEscape;
  const console = x(input.consoleSocket);
  const plan = diskPlan(input);
  const disk =
    plan.kind === 'volume'
      ? [
          `    <disk type='volume' device='disk'>`,
          `      <driver name='qemu' type='${diskFormat(image)}'/>`,
          `      <source pool='${x(plan.pool)}' volume='${x(plan.volume)}'/>`,
        ]
      : [
          `    <disk type='file' device='disk'>`,
          `      <driver name='qemu' type='qcow2'/>`,
          `      <source file='${x(plan.path)}'/>`,
          `      <backingStore type='file'>`,
          `        <format type='${plan.baseFormat}'/>`,
          `        <source file='${x(plan.base)}'/>`,
          `      </backingStore>`,
        ];
  const lines = [
    `<domain type='${domainType}'>`,
    `  <name>${domainName(instance.id)}</name>`,
    `  <uuid>${instance.id}</uuid>`,
    `  <title>${x(instance.name)}</title>`,
    `  <metadata>`,
    `    <weft:instance xmlns:weft='${WEFT_XMLNS}'>`,
    `      <weft:id>${instance.id}</weft:id>`,
    `      <weft:tenant>${instance.tenantId}</weft:tenant>`,
    `    </weft:instance>`,
    `  </metadata>`,
    `  <memory unit='MiB'>${instance.memoryMb}</memory>`,
    `  <currentMemory unit='MiB'>${instance.memoryMb}</currentMemory>`,
    `  <vcpu placement='static'>${instance.cpus}</vcpu>`,
    `  <os>`,
    `    <type arch='x86_64' machine='q35'>hvm</type>`,
    `    <boot dev='hd'/>`,
    `  </os>`,
    `  <features>`,
    `    <acpi/>`,
    `    <apic/>`,
    `  </features>`,
    // host-model, not host-passthrough: a guest can move to a host with another CPU.
    ...(domainType === 'kvm' ? [`  <cpu mode='host-model'/>`] : []),
    `  <clock offset='utc'/>`,
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>restart</on_reboot>`,
    `  <on_crash>restart</on_crash>`,
    `  <devices>`,
    ...disk,
    `      <target dev='vda' bus='virtio'/>`,
    `    </disk>`,
    `    <disk type='file' device='cdrom'>`,
    `      <driver name='qemu' type='raw'/>`,
    `      <source file='${x(seedPath(input.consoleSocket))}'/>`,
    `      <target dev='sda' bus='sata'/>`,
    `      <readonly/>`,
    `    </disk>`,
    ...ports.flatMap((p) => [
      `    <interface type='ethernet'>`,
      `      <mac address='${p.mac}'/>`,
      // libvirt makes the tap under this name (and removes it when the domain stops); the agent plugs it once its guards are in place.
      `      <target dev='${p.ifname}'/>`,
      `      <model type='virtio'/>`,
      `      <mtu size='${p.mtu}'/>`,
      `    </interface>`,
    ]),
    `    <serial type='unix'>`,
    `      <source mode='bind' path='${console}'/>`,
    `      <target port='0'/>`,
    `    </serial>`,
    `    <console type='unix'>`,
    `      <source mode='bind' path='${console}'/>`,
    `      <target type='serial' port='0'/>`,
    `    </console>`,
    `    <memballoon model='virtio'/>`,
    `    <rng model='virtio'>`,
    `      <backend model='random'>/dev/urandom</backend>`,
    `    </rng>`,
    `  </devices>`,
    `</domain>`,
  ];
  return `${lines.join('\n')}\n`;
}

function renderNetworkConfig(ports: GuestPort[], dns: string[]): string {
  const ethernets: Record<string, unknown> = {};
  ports.forEach((p, i) => {
    const eth: Record<string, unknown> = {
      match: { macaddress: p.mac },
      'set-name': p.guest,
      mtu: p.mtu,
      dhcp4: false,
      dhcp6: false,
      'accept-ra': false,
    };
    if (p.addresses.length > 0) eth.addresses = p.addresses;
    // IPv4's default route as a route (`to: default` is not known to
    // cloud-init 22.4); IPv6's as gateway6, because cloud-init 22.4 turns a
    // route `to: ::/0` into ::/64 for networkd and ifupdown (it normalises
    // the route twice, and the second pass reads prefix 0 as missing).
    if (p.gateway4) eth.routes = [{ to: '0.0.0.0/0', via: p.gateway4.via, ...(p.gateway4.onLink ? { 'on-link': true } : {}) }];
    if (p.gateway6) eth.gateway6 = p.gateway6;
    if (i === 0 && dns.length > 0) eth.nameservers = { addresses: dns };
    ethernets[p.guest] = eth;
  });
  return yaml({ version: 2, ethernets });
}

function renderUserData(input: ProfileInput, ports: GuestPort[]): string {
  const { vm } = input;
  const sysctl = new Scalar(
    [
      '# Written by weft: a port keeps its MAC for life, so neighbour entries can live long; no router advertisements.',
      `net.ipv4.neigh.default.base_reachable_time_ms = ${vm.arpTimeoutMs}`,
      `net.ipv6.neigh.default.base_reachable_time_ms = ${vm.ndTimeoutMs}`,
      'net.ipv6.conf.all.accept_ra = 0',
      'net.ipv6.conf.default.accept_ra = 0',
      '',
    ].join('\n'),
  );
  sysctl.type = Scalar.BLOCK_LITERAL;
  const doc: Record<string, unknown> = { hostname: input.instance.name, preserve_hostname: false };
  if (input.sshKeys.length > 0) doc.ssh_authorized_keys = input.sshKeys;
  doc.write_files = [{ path: '/etc/sysctl.d/60-weft.conf', owner: 'root:root', permissions: '0644', content: sysctl }];
  // runcmd, not bootcmd: cloud-init runs bootcmd before write_files, so a
  // bootcmd `sysctl --system` would not see the file on the first boot.
  // Later boots: systemd-sysctl reads it before the network comes up.
  doc.runcmd = ['sysctl --system'];
  // A routed port's IPv4 gateway is on-link to a /32: cloud-init 22.4 (Debian 12) drops `on-link`
  // when it renders networkd files, and its ifupdown renderer's `route add default gw` fails, so
  // the route is put in place at every boot, after the network config (netplan needs none of this).
  const onLink = ports.filter((p) => p.gateway4?.onLink);
  if (onLink.length > 0)
    doc.bootcmd = onLink.map((p) => ['ip', 'route', 'replace', 'default', 'via', (p.gateway4 as { via: string }).via, 'dev', p.guest, 'onlink']);
  return `#cloud-config\n${yaml(doc)}`;
}

/** Block-style YAML, every string double-quoted, no folding of long lines (SSH keys). */
const yaml = (value: unknown): string => stringify(value, { lineWidth: 0, defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' });

/**
 * Free text that goes into XML and YAML (an image, a pool, a path, a key):
 * any string without control characters (XML 1.0 cannot carry most of them)
 * and without the Unicode line and paragraph separators (PyYAML, YAML 1.1,
 * breaks lines on them, even inside quotes) or half a surrogate pair (no
 * UTF-8 for it).
 */
function text(field: string, v: unknown): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
  if (typeof v !== 'string' || /[\x00-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]/.test(v) || LONE_SURROGATE.test(v)) {
    throw invalid(field, v, 'must be text without control characters or line breaks');
  }
  return v;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** An absolute path (libvirt refuses relative ones) of free text; `shown` is what the error names (the template, not its expansion). */
function absPath(field: string, v: unknown, shown: unknown = v): string {
  if (typeof v !== 'string' || !v.startsWith('/')) throw invalid(field, shown, 'must be an absolute path');
  text(field, v);
  return v;
}
