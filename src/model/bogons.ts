// Prefixes no BGP session accepts (the hosts' filters, agent/routing/bird-conf.ts, and the fabric's, model/fabric.ts): one list for both.

/**
 * Bogons: never accepted from an upstream, each prefix together with every
 * longer one (`prefix+` in BIRD). The default routes are not bogons.
 */
export const BOGONS4: readonly string[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
];
export const BOGONS6: readonly string[] = [
  '::/8',
  '100::/64',
  '2001:2::/48',
  '2001:10::/28',
  '2001:db8::/32',
  '2002::/16',
  '3ffe::/16',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
];
/** The longest prefixes a full-table import accepts. */
export const LONGEST4 = 24;
export const LONGEST6 = 48;
