// A real VM for the lab (`weft lab up --boot-vm`): an instance booted under
// qemu (TCG: these machines have no /dev/kvm) from the profile its agent
// wrote on the hypervisor, the way libvirt would run that domain.xml: its
// tap (`<target dev=...>`, made by qemu in the hypervisor's namespace and
// plugged by the agent like any port), its MAC and MTU, its serial console
// on the domain's unix socket (mode='bind'), which `weft console` reaches
// through the API and the agent. The guest is Debian's kernel with a
// busybox initramfs built here: it has no disk and no cloud-init, so its
// addresses and routes come on the kernel command line, taken from the
// instance's network-config (the seed the agent wrote beside domain.xml).
// scripts/setup.sh puts the kernel and its virtio modules in GUEST_DIR.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parse as parseYaml } from 'yaml';
import { parseIp } from '../model/addr.js';
import { invalid, WeftError } from '../model/errors.js';
import { run } from '../sys/exec.js';
import { until } from '../sys/until.js';
import type { Lab, NsRef } from './builder.js';
import { sleep } from './measure.js';

/** Where scripts/setup.sh puts the guest kernel (`vmlinuz`) and its modules (`modules/*.ko`); WEFT_GUEST_DIR overrides. */
export const GUEST_DIR = process.env.WEFT_GUEST_DIR ?? '/var/cache/weft/guest';
/** busybox-static's binary: the guest's whole userland. */
export const BUSYBOX = '/bin/busybox';
/** What the guest needs of its kernel's modules: a virtio NIC on PCI. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_net'];
/** At most this much memory for a lab guest, whatever its instance asks (TCG on a shared machine). */
export const GUEST_MEMORY_MB = 128;
/** The instance `weft lab up --boot-vm` boots under qemu. */
export const GUEST_NAME = 't1guest';
/** The line the guest's init prints on its console once its network is up (then a shell). */
export const GUEST_READY = 'weft-guest ready';

/** One interface of the guest, as its profile describes it. */
export interface GuestNic {
  /** The hypervisor-side tap (`<target dev=...>`). */
  tap: string;
  mac: string;
  mtu: number;
  /** CIDR addresses, IPv4 first. */
  addresses: string[];
  /** Default gateways by family (null: none). */
  gateway4: string | null;
  gateway6: string | null;
}

/** What the lab boots an instance from: its name, memory, vCPUs, NICs and console socket, from domain.xml and network-config. */
export interface GuestSpec {
  name: string;
  hostname: string;
  memoryMb: number;
  vcpus: number;
  consoleSocket: string;
  nics: GuestNic[];
}

const attr = (xml: string, re: RegExp, what: string): string => {
  const m = re.exec(xml);
  if (!m?.[1]) throw invalid('domain.xml', what, 'is missing from the domain');
  return m[1];
};

/**
 * Reads the parts of an instance's profile the lab's qemu needs (pure): the
 * domain's name, memory, vCPUs, interfaces (tap, MAC, MTU) and serial socket
 * from domain.xml (as profile-render.ts writes it), each interface's
 * addresses and gateways from network-config (matched by MAC), the hostname
 * from meta-data. Throws E_INVALID_ARG naming what is missing or malformed.
 */
export function guestSpec(domainXml: string, networkConfig: string, metaData: string): GuestSpec {
  const name = attr(domainXml, /<name>([^<]+)<\/name>/, 'name');
  const mem = /<memory unit='(KiB|MiB|GiB)'>(\d+)<\/memory>/.exec(domainXml);
  if (!mem) throw invalid('domain.xml', 'memory', 'is missing from the domain');
  const memoryMb = Number(mem[2]) * { KiB: 1 / 1024, MiB: 1, GiB: 1024 }[mem[1] as 'KiB' | 'MiB' | 'GiB'];
  const vcpus = Number(attr(domainXml, /<vcpu[^>]*>(\d+)<\/vcpu>/, 'vcpu'));
  const consoleSocket = attr(domainXml, /<serial type='unix'>\s*<source mode='bind' path='([^']+)'\/>/, "serial (type='unix', mode='bind')");
  const net = parseYaml(networkConfig) as { version?: number; ethernets?: Record<string, NetplanEth> } | null;
  if (net?.version !== 2 || typeof net.ethernets !== 'object')
    throw invalid('network-config', net?.version, 'must be a network-config version 2 with ethernets');
  const eths = Object.values(net.ethernets);
  const nics: GuestNic[] = [];
  for (const m of domainXml.matchAll(/<interface type='ethernet'>([\s\S]*?)<\/interface>/g)) {
    const body = m[1] as string;
    const mac = attr(body, /<mac address='([0-9a-f:]{17})'\/>/, 'interface mac');
    const tap = attr(body, /<target dev='([^']+)'\/>/, 'interface target');
    const mtu = Number(/<mtu size='(\d+)'\/>/.exec(body)?.[1] ?? 1500);
    const eth = eths.find((e) => e.match?.macaddress?.toLowerCase() === mac);
    if (!eth) throw invalid('network-config', mac, 'has no ethernet matching this MAC of the domain');
    const addresses = (eth.addresses ?? []).map(String);
    for (const a of addresses) {
      const [ip, len] = a.split('/');
      parseIp(`network-config ${mac} address`, ip);
      if (!/^\d{1,3}$/.test(len ?? '')) throw invalid(`network-config ${mac} address`, a, 'must be an address with a prefix length (10.0.0.5/24)');
    }
    const v4route = (eth.routes ?? []).find((r) => r.to === '0.0.0.0/0' || r.to === 'default');
    const v6route = (eth.routes ?? []).find((r) => r.to === '::/0');
    const gateway4 = v4route?.via ?? null;
    const gateway6 = eth.gateway6 ?? v6route?.via ?? null;
    for (const g of [gateway4, gateway6]) if (g !== null) parseIp(`network-config ${mac} gateway`, g);
    nics.push({ tap, mac, mtu, addresses: addresses.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':'))), gateway4, gateway6 });
  }
  if (nics.length === 0) throw invalid('domain.xml', 'interface', "has no <interface type='ethernet'>");
  const hostname = /local-hostname:\s*"?([A-Za-z0-9.-]+)"?/.exec(metaData)?.[1] ?? name;
  return { name, hostname, memoryMb, vcpus, consoleSocket, nics };
}

interface NetplanEth {
  match?: { macaddress?: string };
  addresses?: unknown[];
  routes?: { to?: string; via?: string }[];
  gateway6?: string;
}

/**
 * The guest kernel's command line (pure): the serial console, and per NIC
 * `weft.nN=<mac>,<mtu>,<addr>+<addr>,<gw4>,<gw6>` (empty fields for none)
 * for the init script (guestInit) to configure.
 */
export function guestCmdline(s: GuestSpec): string {
  const nics = s.nics.map((n, i) => `weft.n${i}=${[n.mac, n.mtu, n.addresses.join('+'), n.gateway4 ?? '', n.gateway6 ?? ''].join(',')}`);
  return ['console=ttyS0', 'quiet', 'panic=-1', `weft.hostname=${s.hostname}`, ...nics].join(' ');
}

/**
 * The initramfs's /init (pure): mounts, loads the modules in `order`,
 * configures each NIC from the command line (found by MAC, renamed ethN
 * in order), prints GUEST_READY with the addresses, and keeps a shell on
 * the serial console. ARP and NDP timeouts as the profiles' user-data
 * sets them are not applied: the guest is there to be reached.
 */
export function guestInit(order: string[]): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${order.join(' ')}; do insmod /lib/modules/$m.ko || echo "weft-guest: insmod $m failed"; done
ip link set lo up
n=0
for a in $(cat /proc/cmdline); do
  case "$a" in
    weft.hostname=*) hostname "\${a#*=}" ;;
    weft.n*=*)
      IFS=, read -r mac mtu addrs gw4 gw6 <<EOF
\${a#*=}
EOF
      dev=""
      for d in /sys/class/net/*; do [ "$(cat $d/address)" = "$mac" ] && dev=\${d##*/}; done
      if [ -z "$dev" ]; then echo "weft-guest: no interface with MAC $mac"; continue; fi
      ip link set "$dev" down; ip link set "$dev" name "eth$n"; dev="eth$n"; n=$((n + 1))
      # As the profile's network-config says: no router advertisements; no DAD (busybox's ip has no nodad).
      echo 0 > /proc/sys/net/ipv6/conf/$dev/accept_ra
      echo 0 > /proc/sys/net/ipv6/conf/$dev/accept_dad
      ip link set "$dev" mtu "$mtu" up
      for x in $(echo "$addrs" | tr + ' '); do
        case "$x" in *:*) ip -6 addr add "$x" dev "$dev" ;; *) ip addr add "$x" dev "$dev" ;; esac
      done
      [ -n "$gw4" ] && { ip route add default via "$gw4" dev "$dev" onlink 2>/dev/null || ip route add default via "$gw4" dev "$dev"; }
      [ -n "$gw6" ] && ip -6 route add default via "$gw6" dev "$dev"
      ;;
  esac
done
echo "${GUEST_READY} $(hostname): $(ip -o addr show scope global | awk '{print $2, $4}' | tr '\\n' ' ')"
while true; do setsid cttyhack sh -l; done
`;
}

/** One file or directory of a newc archive. */
export interface CpioEntry {
  path: string;
  /** Directory, or a regular file with its content. */
  dir?: boolean;
  data?: Buffer;
  /** Permission bits (default 0755 for directories and 0644 for files). */
  perm?: number;
}

/** A cpio archive in the newc format the kernel unpacks as an initramfs (pure). */
export function newc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const push = (name: string, mode: number, data: Buffer, ino: number) => {
    const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, Buffer.byteLength(name) + 1, 0];
    const header = `070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`;
    const head = Buffer.from(`${header}${name}\0`, 'latin1');
    parts.push(head, pad(head.length), data, pad(data.length));
  };
  entries.forEach((e, i) => {
    const perm = e.perm ?? (e.dir ? 0o755 : 0o644);
    push(e.path.replace(/^\/+/, ''), (e.dir ? 0o040000 : 0o100000) | perm, e.dir ? Buffer.alloc(0) : (e.data ?? Buffer.alloc(0)), i + 1);
  });
  push('TRAILER!!!', 0, Buffer.alloc(0), 0);
  return Buffer.concat(parts);
}

/** A module's `depends=` from its .modinfo section (pure): the names, none for an empty list. */
export function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const start = at + '\0depends='.length;
  const end = ko.indexOf(0, start);
  const list = ko.subarray(start, end < 0 ? undefined : end).toString('latin1');
  return list === '' ? [] : list.split(',');
}

/** Modules in load order (pure): every module after what it depends on. Throws E_NOT_FOUND for a module `deps` lacks. */
export function loadOrder(want: string[], deps: ReadonlyMap<string, string[]>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (m: string, path: string[]) => {
    if (seen.has(m)) return;
    if (path.includes(m)) throw invalid('modules', m, `depends on itself through ${path.join(' -> ')}`);
    const d = deps.get(m);
    if (!d)
      throw new WeftError(
        'E_NOT_FOUND',
        `guest kernel module ${m} is not in ${GUEST_DIR}/modules (needed by ${path.at(-1) ?? 'the guest'}): run scripts/setup.sh`,
      );
    for (const x of d) visit(x, [...path, m]);
    seen.add(m);
    out.push(m);
  };
  for (const m of want) visit(m, []);
  return out;
}

/** The guest's kernel and an initramfs built into `dir` (busybox, the modules, /init). Throws E_NOT_FOUND naming what setup did not install. */
export async function guestImage(dir: string): Promise<{ kernel: string; initrd: string }> {
  const kernel = join(GUEST_DIR, 'vmlinuz');
  const modDir = join(GUEST_DIR, 'modules');
  for (const [path, what] of [
    [kernel, 'the guest kernel'],
    [modDir, "the guest kernel's modules"],
    [BUSYBOX, 'busybox (busybox-static)'],
    ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86_64 (qemu-system-x86)'],
  ] as const)
    if (!existsSync(path)) throw new WeftError('E_NOT_FOUND', `${what} is not installed at ${path}: run scripts/setup.sh (--boot-vm needs it)`);
  const deps = new Map<string, string[]>();
  const files = new Map<string, Buffer>();
  for (const f of readdirSync(modDir).filter((x) => x.endsWith('.ko'))) {
    const b = readFileSync(join(modDir, f));
    const name = f.slice(0, -3);
    deps.set(name, moduleDepends(b));
    files.set(name, b);
  }
  const order = loadOrder(GUEST_MODULES, deps);
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'tmp', 'etc', 'lib', 'lib/modules', 'root'].map((p) => ({ path: p, dir: true })),
    { path: 'bin/busybox', data: readFileSync(BUSYBOX), perm: 0o755 },
    { path: 'init', data: Buffer.from(guestInit(order)), perm: 0o755 },
    ...order.map((m) => ({ path: `lib/modules/${m}.ko`, data: files.get(m) as Buffer })),
  ];
  await mkdir(dir, { recursive: true });
  const initrd = join(dir, 'initrd.gz');
  await writeFile(initrd, gzipSync(newc(entries), { level: 1 }));
  return { kernel, initrd };
}

/** A booted guest: its qemu process (in the hypervisor's namespace) and what it was booted from. */
export interface Guest {
  spec: GuestSpec;
  host: string;
  proc: ChildProcess;
  /** qemu's human monitor (HMP), a unix socket. */
  monitor: string;
  /** Kills qemu (its taps go with it) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Boots `spec` under qemu in host namespace `ns`: the taps made by qemu
 * there (set up with their MTU: qemu leaves them down, libvirt would bring
 * them up), the console served on the domain's socket. Resolves once the
 * guest printed GUEST_READY on its console log (TCG: seconds; up to
 * `timeoutMs`). The lab records the process so `destroy()` kills it.
 */
export async function bootGuest(
  lab: Lab,
  host: { name: string; ns: NsRef },
  spec: GuestSpec,
  image: { kernel: string; initrd: string },
  o: { logFile: string; monitor: string; timeoutMs?: number; incoming?: string },
): Promise<Guest> {
  const args = [
    ...['-monitor', `unix:${o.monitor},server=on,wait=off`],
    ...(o.incoming ? ['-incoming', `unix:${o.incoming}`] : []),
    ...['-accel', 'tcg', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
    ...['-name', spec.name, '-m', String(Math.min(spec.memoryMb, GUEST_MEMORY_MB)), '-smp', String(Math.min(spec.vcpus, 1))],
    ...['-kernel', image.kernel, '-initrd', image.initrd, '-append', guestCmdline(spec)],
    ...spec.nics.flatMap((n, i) => [
      '-netdev',
      `tap,id=n${i},ifname=${n.tap},script=no,downscript=no`,
      '-device',
      `virtio-net-pci,netdev=n${i},mac=${n.mac},host_mtu=${n.mtu}`,
    ]),
    ...['-chardev', `socket,id=c0,path=${spec.consoleSocket},server=on,wait=off,logfile=${o.logFile},logappend=on`, '-serial', 'chardev:c0'],
  ];
  const proc = lab.spawn(host.ns, '/usr/bin/qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-2000);
  });
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  const stop = async () => {
    if (exited()) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await gone;
  };
  try {
    for (const n of spec.nics) {
      await until(`qemu's tap ${n.tap}`, async () => {
        await sleep(50);
        if (exited()) throw new WeftError('E_DATAPLANE', `qemu exited (${proc.exitCode ?? proc.signalCode}): ${stderr.trim()}`);
        return (await lab.exec(host.ns, 'ip', ['link', 'show', 'dev', n.tap], { okCodes: [1] })).code === 0;
      });
      await lab.exec(host.ns, 'ip', ['link', 'set', 'dev', n.tap, 'mtu', String(n.mtu), 'up']);
    }
    // An incoming guest runs once its migration is in.
    if (!o.incoming)
      await until(
        `guest ${spec.hostname} to print "${GUEST_READY}" on its console`,
        async () => {
          await sleep(100);
          if (exited()) throw new WeftError('E_DATAPLANE', `qemu exited (${proc.exitCode ?? proc.signalCode}): ${stderr.trim()}`);
          return existsSync(o.logFile) && readFileSync(o.logFile, 'latin1').includes(GUEST_READY);
        },
        o.timeoutMs ?? 120_000,
      );
  } catch (e) {
    await stop();
    throw e;
  }
  return { spec, host: host.name, proc, monitor: o.monitor, stop };
}

/** Runs HMP commands on qemu's monitor, one after the other; returns what each printed (the prompt and echo left out). */
export function monitor(path: string, commands: string[], timeoutMs = 120_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    const out: string[] = [];
    let buf = '';
    let i = -1;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new WeftError('E_UNAVAILABLE', `qemu monitor ${path}: no answer to ${commands[i] ?? 'the greeting'} in ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const next = () => {
      if (i >= 0)
        out.push(
          buf
            // biome-ignore lint/suspicious/noControlCharactersInRegex: HMP's line editing writes ANSI escapes
            .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
            .split('\n')
            .slice(1, -1)
            .join('\n')
            .trim(),
        );
      buf = '';
      i++;
      if (i < commands.length) sock.write(`${commands[i]}\n`);
      else {
        clearTimeout(timer);
        sock.end();
        resolve(out);
      }
    };
    sock.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      if (buf.endsWith('(qemu) ')) next();
    });
    // `quit` ends the connection instead of prompting again.
    sock.on('close', () => {
      if (i < commands.length) {
        out.push(buf.trim());
        i = commands.length;
        clearTimeout(timer);
        resolve(out);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new WeftError('E_UNAVAILABLE', `qemu monitor ${path}: ${e.message}`));
    });
  });
}

/**
 * Live-migrates a running guest to another host's namespace, as libvirt
 * would between two hypervisors (migrate --live): a qemu started there
 * from `spec` (the destination agent's profile: the same tap name and MAC,
 * its own console socket) waiting for the incoming state, the source's
 * RAM and devices sent over a unix socket, and the source's qemu ended
 * once the destination runs. qemu announces the guest's MAC from its new
 * tap (self-announce). Returns the guest on its new host and how long the
 * migration took; on failure the source keeps running and the destination
 * is stopped.
 */
export async function migrateGuest(
  lab: Lab,
  from: Guest,
  to: { name: string; ns: NsRef },
  spec: GuestSpec,
  image: { kernel: string; initrd: string },
  o: { logFile: string; monitor: string; socket: string },
): Promise<{ guest: Guest; ms: number }> {
  const dest = await bootGuest(lab, to, spec, image, { logFile: o.logFile, monitor: o.monitor, incoming: o.socket });
  const t0 = performance.now();
  try {
    await until('the incoming qemu to listen', () => existsSync(o.socket), 30_000);
    const [, status] = await monitor(from.monitor, ['migrate unix:' + o.socket, 'info migrate']);
    if (!/Migration status:\s*completed/.test(status ?? ''))
      throw new WeftError('E_DATAPLANE', `qemu migration of ${spec.hostname} did not complete: ${status}`);
  } catch (e) {
    await dest.stop();
    throw e;
  }
  const ms = performance.now() - t0;
  await monitor(from.monitor, ['quit']).catch(() => undefined);
  await from.stop();
  return { guest: dest, ms };
}

/** The profile the agent of a host wrote for an instance (`<vmDir>/instances/<id>/`), read as guestSpec reads it. */
export async function writtenSpec(instanceDir: string): Promise<GuestSpec> {
  const read = (f: string) => readFileSync(join(instanceDir, f), 'utf8');
  return guestSpec(read('domain.xml'), read('network-config'), read('meta-data'));
}

/** Makes an empty image for the lab's sites' imagePath, so each agent can lay its instances' overlay disks on it. */
export async function emptyImage(path: string): Promise<void> {
  if (existsSync(path)) return;
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', path, '1G']);
}
