// A second process for the store contract suite: opens the store at argv[2],
// makes argv[3] writes (an allocation plus a change each) and prints the
// numbers it got as JSON.
import { openStore } from '../../src/store/open.js';

const [url, count] = process.argv.slice(2);
const store = await openStore(url as string);
const got: string[] = [];
process.stderr.write('ready\n');
for (let i = 0; i < Number(count); i++) {
  const n = await store.write(async (tx) => {
    const n = await tx.allocate('shared', 1n, 100000n, `child${i}`, 'shared');
    await tx.appendChange(
      {
        kind: 'host.created',
        host: { hostId: `child${i}`, name: `c${i}`, siteId: 's', rackId: null, underlayIp: '192.0.2.1', asn: null, state: 'active', ipv6Prefix: null },
      },
      new Date().toISOString(),
      null,
    );
    return n;
  });
  got.push(String(n));
  // A pause between transactions: SQLite's lock is not fair, and a writer that
  // starts its next transaction at once starves the other process.
  await new Promise((r) => setTimeout(r, 3));
}
await store.close();
process.stdout.write(JSON.stringify(got));
