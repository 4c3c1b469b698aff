// Announcement frames for a port that just arrived on a host (pure): a
// gratuitous ARP (RFC 5227 announcement) per IPv4 address and an unsolicited
// neighbour advertisement (RFC 4861 7.2.6) per IPv6 address.
import { parseIp, parseMac } from '../../../model/addr.js';

function macBytes(mac: string): Buffer {
  return Buffer.from(
    parseMac('mac', mac)
      .text.split(':')
      .map((h) => Number.parseInt(h, 16)),
  );
}

function ipBytes(ip: string): Buffer {
  const p = parseIp('ip', ip);
  const len = p.family === 4 ? 4 : 16;
  const out = Buffer.alloc(len);
  let n = p.n;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** Broadcast ARP request with sender = target = `ip`, sender hardware address `mac`. */
export function garpFrame(mac: string, ip: string): Buffer {
  const m = macBytes(mac);
  const a = ipBytes(ip);
  const f = Buffer.alloc(42);
  f.fill(0xff, 0, 6);
  m.copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14); // Ethernet
  f.writeUInt16BE(0x0800, 16); // IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  m.copy(f, 22);
  a.copy(f, 28);
  a.copy(f, 38);
  return f;
}

const ALL_NODES = Buffer.from('ff020000000000000000000000000001', 'hex');

/** Unsolicited NA (override set, solicited clear) to ff02::1 for `ip`, with the target link-layer option. */
export function unsolicitedNaFrame(mac: string, ip: string): Buffer {
  const m = macBytes(mac);
  const target = ipBytes(ip);
  const icmp = Buffer.alloc(32);
  icmp[0] = 136;
  icmp.writeUInt32BE(0x20000000, 4); // O flag
  target.copy(icmp, 8);
  icmp[24] = 2; // target link-layer address
  icmp[25] = 1;
  m.copy(icmp, 26);
  icmp.writeUInt16BE(icmpv6Checksum(target, ALL_NODES, icmp), 2);
  const ip6 = Buffer.alloc(40);
  ip6.writeUInt32BE(0x60000000, 0);
  ip6.writeUInt16BE(icmp.length, 4);
  ip6[6] = 58;
  ip6[7] = 255;
  target.copy(ip6, 8);
  ALL_NODES.copy(ip6, 24);
  const eth = Buffer.from([0x33, 0x33, 0, 0, 0, 1, ...m, 0x86, 0xdd]);
  return Buffer.concat([eth, ip6, icmp]);
}

/** The ICMPv6 checksum over the pseudo-header (RFC 8200 8.1); the message's checksum field must be zero. */
export function icmpv6Checksum(src: Buffer, dst: Buffer, msg: Buffer): number {
  const pseudo = Buffer.alloc(40);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 16);
  pseudo.writeUInt32BE(msg.length, 32);
  pseudo[39] = 58;
  let sum = 0;
  for (const b of [pseudo, msg]) for (let i = 0; i < b.length; i += 2) sum += ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The frames announcing a port's addresses. */
export function announcementFrames(mac: string, ips: string[]): Buffer[] {
  return ips.map((ip) => (ip.includes(':') ? unsolicitedNaFrame(mac, ip) : garpFrame(mac, ip)));
}
