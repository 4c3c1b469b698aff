import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countVxlan, innerKind, isGroupMac } from './vxlan-frames.js';

const outer =
  '12:00:01.000001 02:00:00:aa:00:01 > 02:00:00:aa:00:02, ethertype IPv4 (0x0800), length 92: 192.0.2.1.40000 > 192.0.2.3.4789: VXLAN, flags [I] (0x08), vni 100';
const pkt = (inner: string) => `${outer} | ${inner}`;

const unicastArp = pkt('02:00:00:00:00:0a > 02:00:00:00:00:0b, ethertype ARP (0x0806), length 42: Request who-has 10.0.0.2 tell 10.0.0.1, length 28');
const arpReply = pkt('02:00:00:00:00:0b > 02:00:00:00:00:0a, ethertype ARP (0x0806), length 42: Reply 10.0.0.2 is-at 02:00:00:00:00:0b, length 28');
const broadcastArp = pkt('02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.0.0.2 tell 10.0.0.1, length 28');
const unicastNs = pkt(
  '02:00:00:00:00:0a > 02:00:00:00:00:0b, ethertype IPv6 (0x86dd), length 86: fd00:10::1 > fd00:10::2: ICMP6, neighbor solicitation, who has fd00:10::2, length 32',
);
const multicastNs = pkt(
  '02:00:00:00:00:0a > 33:33:ff:00:00:02, ethertype IPv6 (0x86dd), length 86: fd00:10::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has fd00:10::2, length 32',
);
const ipv4Mcast = pkt('02:00:00:00:00:0a > 01:00:5e:00:00:fb, ethertype IPv4 (0x0800), length 60: 10.0.0.1.5353 > 224.0.0.251.5353: UDP, length 18');
const ping = pkt('02:00:00:00:00:0a > 02:00:00:00:00:0b, ethertype IPv4 (0x0800), length 98: 10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 1, length 64');

test('group MACs are broadcast and multicast ones', () => {
  assert.equal(isGroupMac('ff:ff:ff:ff:ff:ff'), true);
  assert.equal(isGroupMac('33:33:00:00:00:01'), true);
  assert.equal(isGroupMac('01:00:5e:00:00:fb'), true);
  assert.equal(isGroupMac('02:00:00:00:00:0a'), false);
});

test('inner frames: floods, unicast neighbour probes, other unicast', () => {
  assert.equal(innerKind(broadcastArp), 'flood');
  assert.equal(innerKind(multicastNs), 'flood');
  assert.equal(innerKind(ipv4Mcast), 'flood');
  assert.equal(innerKind(unicastArp), 'probe');
  assert.equal(innerKind(arpReply), 'probe');
  assert.equal(innerKind(unicastNs), 'probe');
  assert.equal(innerKind(ping), 'unicast');
  assert.equal(innerKind(outer.replace('4789: VXLAN', '179: Flags [P.]')), null);
  assert.equal(innerKind(outer), null);
});

test('a count keeps the floods, counts probes, and treats an unreadable inner frame as a flood', () => {
  const c = countVxlan([ping, unicastArp, arpReply, unicastNs, broadcastArp, outer, 'not a packet']);
  assert.equal(c.packets, 6);
  assert.equal(c.probes, 3);
  assert.deepEqual(c.flood, [broadcastArp, outer]);
});
