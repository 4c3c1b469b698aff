// Sends announcement frames into a network's bridge through one long-lived
// helper process (python3's AF_PACKET socket; Node has no raw link-layer
// sockets). Sent three times, as QEMU repeats its own announcements.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Runner } from '../../../sys/exec.js';
import { bridgeName } from '../../names.js';
import { announcementFrames } from './frames.js';

const SENDER = `
import socket, sys, time
socks = {}
for line in sys.stdin:
    parts = line.split()
    if len(parts) < 2:
        continue
    dev, frames = parts[0], [bytes.fromhex(h) for h in parts[1:]]
    try:
        s = socks.get(dev)
        if s is None:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind((dev, 0))
            socks[dev] = s
        for i in range(3):
            for f in frames:
                s.send(f)
            if i < 2:
                time.sleep(0.05 * (i + 1))
    except OSError as e:
        socks.pop(dev, None)
        print("announce %s: %s" % (dev, e), file=sys.stderr, flush=True)
`;

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const senders = new Map<string, ChildProcess>();

function sender(netns: string | undefined): ChildProcess {
  const key = netns ?? '';
  const have = senders.get(key);
  if (have && have.exitCode === null && !have.killed) return have;
  const [cmd, args] = netns ? ['ip', ['netns', 'exec', netns, PYTHON, '-u', '-c', SENDER]] : [PYTHON, ['-u', '-c', SENDER]];
  const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'inherit'] });
  child.stdin?.on('error', () => {});
  child.on('exit', () => senders.delete(key));
  child.unref();
  (child.stdin as unknown as { unref?: () => void })?.unref?.();
  senders.set(key, child);
  return child;
}

/** Queues announcements for ports that became local; returns without waiting for the repeats. */
export async function sendAnnouncements(_run: Runner, items: { vni: number; mac: string; ips: string[] }[], netns?: string): Promise<void> {
  const lines = items
    .filter((a) => a.ips.length > 0)
    .map(
      (a) =>
        `${bridgeName(a.vni)} ${announcementFrames(a.mac, a.ips)
          .map((f) => f.toString('hex'))
          .join(' ')}\n`,
    );
  if (lines.length === 0) return;
  sender(netns).stdin?.write(lines.join(''));
}

/** Stops the helper processes (agent shutdown, tests). */
export function stopAnnouncers(): void {
  for (const c of senders.values()) c.kill();
  senders.clear();
}
