// What a capture on the underlay saw inside VXLAN (pure): each packet as
// `tcpdump -n -e` prints it, its inner frame after ' | '. The lab's check
// holds the overlay to "broadcast-free": no frame is flooded across the
// underlay. Unicast neighbour reachability probes are not floods: a VM
// whose neighbour entry went stale asks the one MAC it knows (an ARP request
// or an NS sent to a unicast address), and RFC 9161 (section 3.2) has a
// bridge or PE forward those rather than answer them, as Linux does; they
// cross as unicast VXLAN like any other frame, and are counted apart.

export type InnerKind = 'flood' | 'probe' | 'unicast';

export interface VxlanCount {
  /** VXLAN packets seen. */
  packets: number;
  /** Inner frames to a broadcast or multicast MAC (ARP, NDP or anything else). */
  flood: string[];
  /** Unicast ARP requests and replies, unicast NS and NA: neighbour reachability between two VMs. */
  probes: number;
}

const VXLAN = / > [\d.]+\.4789: VXLAN/;
/** The inner frame's `src > dst,` as `tcpdump -e` prints it. */
const INNER = /^\s*([0-9a-f:]{17}) > ([0-9a-f:]{17}), ethertype (\S+)/;

/** A MAC whose group bit (the least significant bit of its first octet) is set: broadcast or multicast. */
export function isGroupMac(mac: string): boolean {
  return (Number.parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

/** The kind of one captured VXLAN packet's inner frame; null when the line is not a VXLAN packet with a readable inner frame. */
export function innerKind(line: string): InnerKind | null {
  if (!VXLAN.test(line)) return null;
  const inner = line.split(' | ')[1];
  if (inner === undefined) return null;
  const m = INNER.exec(inner);
  if (!m) return null;
  const dst = m[2] as string;
  if (isGroupMac(dst)) return 'flood';
  if (/ARP|ICMP6, neighbor (solicitation|advertisement)/.test(inner)) return 'probe';
  return 'unicast';
}

/** Counts what a set of captured packets (`capture().stop()` lines) carried inside VXLAN. */
export function countVxlan(lines: string[]): VxlanCount {
  const out: VxlanCount = { packets: 0, flood: [], probes: 0 };
  for (const l of lines) {
    if (!VXLAN.test(l)) continue;
    out.packets++;
    const k = innerKind(l);
    // A VXLAN packet whose inner frame tcpdump could not print is counted as a flood: the check must not pass on what it cannot read.
    if (k === 'flood' || k === null) out.flood.push(l);
    else if (k === 'probe') out.probes++;
  }
  return out;
}
