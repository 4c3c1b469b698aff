// The VM profiles the golden files under test/fixtures/profile/<case>/ are
// rendered from: shared by the golden test (src/model/profile-render.test.ts)
// and the check of every golden with libvirt's and cloud-init's own tools
// (test/integration/profile-tools.test.ts), which compares what cloud-init
// makes of them with these inputs.
import { portIfname } from '../../src/model/ifname.js';
import { type ProfileInput, type ProfilePort, VM_DEFAULTS } from '../../src/model/profile.js';

const TENANT = '0190a1b2-0000-7000-8000-00000000a001';
const KEY_ALICE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDx1Yl0bzY0iYb9a0aT5n3xq1m4QeJ0dO8kqvX7pZcE1 alice@laptop';
const KEY_BOB = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7vQ1mZ0b3JkJ2l5a0dUbm9Kc2FQb3d5c1VxV2hYc1p2eFhZa0VQbW1KT3lUc2JtVjZ3d3RCc0lHd0V6bVd5 bob@ci "deploy"';

const port = (portId: string, mac: string, ipv4: string | null, ipv6: string | null, network: ProfilePort['network']): ProfilePort => ({
  portId,
  mac,
  ipv4,
  ipv6,
  ifname: portIfname(portId),
  network,
});

const web = {
  id: '0190a1b2-0000-7000-8000-00000000e001',
  name: 'web1',
  tenantId: TENANT,
  cpus: 2,
  memoryMb: 2048,
  diskGb: 20,
  image: 'debian-12',
};

export const PROFILE_CASES: Record<string, ProfileInput> = {
  // Two overlay ports: eth0 dual-stack on a network with gateways, eth1 IPv4 only on one without.
  'overlay-two-ports': {
    instance: web,
    vm: { ...VM_DEFAULTS, dnsServers: ['10.10.0.53', '2001:db8:10::53'] },
    ports: [
      port('0190a1b2-0000-7000-8000-00000000b001', '02:00:0a:0a:00:05', '10.10.0.5', '2001:db8:10::5', {
        id: '0190a1b2-0000-7000-8000-00000000c001',
        name: 'front',
        kind: 'overlay',
        mtu: 1450,
        subnets: ['10.10.0.0/24', '2001:db8:10::/64'],
        gateway4: '10.10.0.1',
        gateway6: '2001:db8:10::1',
      }),
      port('0190a1b2-0000-7000-8000-00000000b002', '02:00:c0:a8:14:07', '192.168.20.7', null, {
        id: '0190a1b2-0000-7000-8000-00000000c002',
        name: 'back',
        kind: 'overlay',
        mtu: 8950,
        // A narrower subnet inside a wider one: the guest gets the narrower prefix.
        subnets: ['192.168.0.0/16', '192.168.20.0/26', '2001:db8:20::/64'],
        gateway4: null,
        gateway6: null,
      }),
    ],
    sshKeys: [KEY_ALICE, KEY_BOB],
    consoleSocket: `/var/lib/weft/instances/${web.id}/console.sock`,
  },
  // A routed port: the address as /32 and /128, default routes via the on-link gateways.
  routed: {
    instance: { ...web, id: '0190a1b2-0000-7000-8000-00000000e002', name: 'edge-1', cpus: 4, memoryMb: 4096, image: 'debian-12-genericcloud' },
    vm: { ...VM_DEFAULTS, dnsServers: ['192.0.2.53', '192.0.2.54', '2001:db8:53::53'], arpTimeoutMs: 3_600_000, ndTimeoutMs: 7_200_000 },
    ports: [
      port('0190a1b2-0000-7000-8000-00000000b003', '02:00:cb:00:71:07', '203.0.113.7', '2001:db8:100::7', {
        id: '0190a1b2-0000-7000-8000-00000000c003',
        name: 'public',
        kind: 'routed',
        mtu: 1500,
        subnets: [],
        gateway4: '169.254.0.1',
        gateway6: 'fe80::1',
      }),
    ],
    sshKeys: [KEY_ALICE],
    consoleSocket: '/var/lib/weft/instances/0190a1b2-0000-7000-8000-00000000e002/console.sock',
  },
  // The disk a volume of a storage pool; no SSH keys, no resolvers; a port without addresses.
  'pool-no-keys': {
    instance: { ...web, id: '0190a1b2-0000-7000-8000-00000000e003', name: 'batch-3', cpus: 1, memoryMb: 512, image: 'debian-12.qcow2' },
    vm: { ...VM_DEFAULTS, imagePool: 'weft-images' },
    ports: [
      port('0190a1b2-0000-7000-8000-00000000b004', '02:00:00:00:00:04', null, null, {
        id: '0190a1b2-0000-7000-8000-00000000c004',
        name: 'quiet',
        kind: 'overlay',
        mtu: 1400,
        subnets: ['10.20.0.0/24'],
        gateway4: null,
        gateway6: null,
      }),
    ],
    sshKeys: [],
    consoleSocket: '/run/weft/instances/0190a1b2-0000-7000-8000-00000000e003/console.sock',
  },
  // Free text that XML must escape: the image and the paths (names are restricted and need none).
  'xml-escaping': {
    // Image names and image paths are restricted (model/profile.ts checkImage, checkVmSettings); the agent's own directory is not.
    instance: { ...web, id: '0190a1b2-0000-7000-8000-00000000e004', name: 'tom-and-jerry', image: 'tom+jerry_1.0' },
    vm: { ...VM_DEFAULTS, imagePath: '/srv/images/r+d/{image}/{instance}.raw' },
    ports: [
      port('0190a1b2-0000-7000-8000-00000000b005', '02:00:0a:1e:00:09', '10.30.0.9', '2001:db8:30::9', {
        id: '0190a1b2-0000-7000-8000-00000000c005',
        name: 'lab',
        kind: 'overlay',
        mtu: 1450,
        subnets: ['2001:db8:30::/48', '10.30.0.0/20'],
        gateway4: null,
        gateway6: null,
      }),
    ],
    sshKeys: [KEY_BOB],
    consoleSocket: '/var/lib/weft/"q&a"/instances/tom&jerry/console.sock',
  },
};
