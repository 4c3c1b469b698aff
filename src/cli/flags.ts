// API errors name the request's field (`underlayIp`, `ports[0].ipv4`); an
// operator typed a flag (`--underlay-ip`, the first `--net`). These pure
// functions find the flag of a field among a command's options and say the
// error in the operator's words.

/** Fields whose flag is not their kebab-cased name. Keys are field paths without indices. */
const SPELLED: Record<string, string> = {
  importPolicy: '--import',
  ports: '--net',
  target: '--to',
  'healthCheck.type': '--check',
  'healthCheck.port': '--check-port',
  'healthCheck.path': '--check-path',
  'healthCheck.intervalMs': '--check-interval-ms',
  'healthCheck.rise': '--rise',
  'healthCheck.fall': '--fall',
};

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The plural field's singular flag spellings: subnets -> subnet, svpClientAddresses -> svpClientAddress. */
function singulars(name: string): string[] {
  const out = [name];
  if (name.endsWith('es')) out.push(name.slice(0, -2));
  if (name.endsWith('s')) out.push(name.slice(0, -1));
  return out;
}

export interface FlagRef {
  /** The flag, e.g. `--net`. */
  flag: string;
  /** Which occurrence of a repeated flag (0-based), when the field is a list item. */
  index?: number;
  /** What in that occurrence, e.g. `ipv4` in `--net NETWORK,ipv4=A`. */
  sub?: string;
}

/**
 * The flag of `field` among `flags` (a command's long options, e.g. `--underlay-ip`),
 * or undefined when the command has none for it (then the field stays as the API said).
 */
export function flagFor(field: string, flags: readonly string[]): FlagRef | undefined {
  // `a.b` (a field of an object), or `list[i]` and `list[i].sub` (a list item, a field of one).
  const m = /^([A-Za-z][\w.]*?)(?:\[(\d+)\](?:\.(\w+))?)?$/.exec(field);
  if (!m) return undefined;
  const [, path = '', idx, sub] = m;
  const index = idx === undefined ? undefined : Number(idx);
  const has = (f: string) => flags.includes(f);
  const withRest = (flag: string): FlagRef => ({ flag, ...(index !== undefined ? { index } : {}), ...(sub !== undefined ? { sub } : {}) });
  // A list item with a sub-field whose list has a flag of its own: ports[0].ipv4 -> the 1st --net, ipv4.
  const spelled = SPELLED[path];
  if (spelled && has(spelled)) return withRest(spelled);
  const last = path.split('.').at(-1) as string;
  for (const name of [path.replaceAll('.', '-'), last])
    for (const s of singulars(name)) {
      const f = `--${kebab(s)}`;
      if (has(f)) return withRest(f);
    }
  return undefined;
}

const ORDINAL = (n: number) => {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th');
  return `${n}${suffix}`;
};

/** How a field reads in an error: `--underlay-ip`, `--subnet (the 2nd)`, `--net (the 1st) ipv4`. */
export function describeFlag(r: FlagRef, repeated: boolean): string {
  const which = r.index !== undefined && repeated ? ` (the ${ORDINAL(r.index + 1)})` : '';
  return `${r.flag}${which}${r.sub !== undefined ? ` ${r.sub}` : ''}`;
}

/**
 * An API error message in the operator's words: `invalid underlayIp "x": ...`
 * becomes `invalid --underlay-ip "x": ...`. Messages that do not start with
 * the field are returned as they are.
 */
export function inFlagTerms(message: string, field: string, shown: string): string {
  const head = `invalid ${field} `;
  if (message.startsWith(head)) return `invalid ${shown} ${message.slice(head.length)}`;
  const bare = `invalid ${field}:`;
  if (message.startsWith(bare)) return `invalid ${shown}:${message.slice(bare.length)}`;
  return message;
}
