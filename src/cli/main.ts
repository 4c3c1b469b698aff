// The `weft` executable: `weft server`, and thin operator commands over the
// REST API (`weft site|host|... create|get|list|delete`). Errors print as
// `error: <message>` with a non-zero exit; --debug adds the stack.
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_TENANT_RATE_MAX } from '../core/context.js';
import { FAULT_HELP, FAULT_KIND_RULE, FAULT_KINDS, isFaultKind } from '../lab/faults/index.js';
import { DEFAULT_CLOUD } from '../lab/plan.js';
import { WeftError } from '../model/errors.js';
import { PROFILE_PARTS, type ProfilePart } from '../model/profile.js';
import { DEFAULT_QUOTAS, QUOTA_KINDS, QUOTA_MAX, QUOTA_WHAT, type QuotaKind } from '../model/quotas.js';
import {
  HEALTH_CHECK_TYPES,
  HOST_STATES,
  IMPORT_POLICIES,
  INSTANCE_STATES,
  MAX_PREFIX_ACTIONS,
  NETWORK_KINDS,
  PLACEMENT_POLICIES,
  ROLES,
  ROUTER_PLATFORMS,
  ROUTER_ROLES,
  type Role,
} from '../model/types.js';
import { RATE_MAX } from '../model/validate.js';
import { reconnectDelay } from '../stream/backoff.js';
import { weftVersion } from '../sys/install.js';
import { LOG_LEVELS, pinoLog } from '../sys/log.js';
import { readPem } from '../sys/pem.js';
import { readSecretFile, writeSecretFile } from '../sys/secret-file.js';
import { ApiClient } from './client.js';
import { completionScript, SHELLS, type Shell } from './completion.js';
import { describeFlag, flagFor, inFlagTerms } from './flags.js';
import { FORMATS, type Format, isData, type Names, type RefKind, referencedIds, render } from './output.js';
import { seedExample } from './seed.js';

export const program = new Command('weft')
  .description('Weft: network control plane for clouds of Linux hypervisors')
  .version(weftVersion(), '-V, --version', 'print the version')
  // Values from the environment are read with Option.env(), never as a default:
  // help shows a default, and a token, or a URL with a password, must never be printed.
  .addOption(new Option('--api <url>', 'API base URL').env('WEFT_API').default('http://127.0.0.1:8080'))
  .addOption(new Option('--token <token>', 'API bearer token (prefer --token-file: a command line is visible to other users)').env('WEFT_TOKEN'))
  .addOption(new Option('--token-file <file>', 'read the API token from this file (mode 0600: refused if group or others may read it)').env('WEFT_TOKEN_FILE'))
  .addOption(new Option('--ca-file <file>', "trust this CA (PEM) for an https:// --api, instead of the system's").env('WEFT_CA_FILE'))
  .addOption(
    new Option('-o, --output <format>', 'output format: table, wide (with ids and more), json or yaml (as the API returns it), name (kind/name)')
      .choices(FORMATS)
      .default('table'),
  )
  .option('--no-headers', 'table and wide: no header line')
  .option('--debug', 'show stacks on errors');

const globals = () => program.opts<{ api: string; token?: string; tokenFile?: string; caFile?: string; output: Format; headers: boolean; debug?: boolean }>();
/** The API token: --token given on the command line, else --token-file (or WEFT_TOKEN_FILE), else WEFT_TOKEN. */
function apiToken(): string | undefined {
  const g = globals();
  if (g.tokenFile !== undefined && program.getOptionValueSource('token') !== 'cli') return readSecretFile('--token-file', g.tokenFile);
  return g.token;
}
const client = () => {
  const g = globals();
  return new ApiClient(g.api, apiToken(), { ca: g.caFile === undefined ? undefined : readPem('--ca-file', g.caFile, 'certificate') });
};
/** Prints `data` (one object or a list of `kind`) in the chosen format, other objects by name in tables. */
async function out(kind: string, data: unknown): Promise<void> {
  const g = globals();
  const names = await readNames(referencedIds(kind, data, g.output));
  process.stdout.write(render(kind, data, { format: g.output, headers: g.headers, names }));
}
/** -o json or yaml: print the data as it is, not a view of it. */
const asData = () => isData(globals().output);
/** Prints `data` as JSON or YAML, whichever -o asked for. */
const printData = (data: unknown) => process.stdout.write(render('', data, { format: globals().output === 'yaml' ? 'yaml' : 'json' }));

/** Ids this few are read one by one; more, with one list of the kind. */
const NAME_LOOKUPS = 20;

/**
 * The names of the objects a table refers to: at most one list request per
 * kind (or a few gets), in parallel. What the token may not read (a tenant
 * token and hosts) is left out, and the table shows the id: a name is never
 * worth failing the command for.
 */
async function readNames(want: Map<RefKind, Set<string>>): Promise<Names> {
  const api = client();
  const names: Names = {};
  await Promise.all(
    [...want].map(async ([kind, ids]) => {
      const found = new Map<string, string>();
      const items =
        ids.size <= NAME_LOOKUPS
          ? await Promise.all([...ids].map((id) => api.get<{ id: string; name: string }>(`/v1/${kind}/${encodeURIComponent(id)}`).catch(() => null)))
          : await api.all<{ id: string; name: string }>(`/v1/${kind}`, {}).catch(() => []);
      for (const o of items) if (o && ids.has(o.id)) found.set(o.id, o.name);
      names[kind] = found;
    }),
  );
  return names;
}

/** A duration such as 90m, 12h, 30d or 2w, in milliseconds, for `flag`. */
function durationMs(flag: string, v: string): number {
  const m = /^(\d+)([mhdw])$/.exec(v);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  const ms = m ? Number(m[1]) * unit[m[2] as keyof typeof unit] : 0;
  if (!m || ms <= 0 || ms > 100 * 365 * 86_400_000)
    throw new WeftError(
      'E_INVALID_ARG',
      `invalid ${flag} ${JSON.stringify(v)}: must be a positive number with m, h, d or w (minutes, hours, days, weeks), e.g. 30d`,
      flag,
    );
  return ms;
}

function int(name: string) {
  return (v: string) => {
    if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be an integer`);
    return Number(v);
  };
}
/** An integer lo..hi, or a usage error naming the option. */
function intIn(name: string, lo: number, hi: number) {
  return (v: string) => {
    const n = int(name)(v);
    if (n < lo || n > hi) throw new InvalidArgumentError(`${name} must be an integer ${lo}..${hi}`);
    return n;
  };
}
/** A quota: an integer 0..QUOTA_MAX, or "default" (sent as null: the server's default). */
function quotaArg(name: string) {
  // Not null itself: commander turns a parser's null into ''.
  return (v: string): number | 'default' => (v === 'default' ? 'default' : intIn(name, 0, QUOTA_MAX)(v));
}
/** publicIpv4 -> public-ipv4: the flag spelling of a quota kind. */
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
/** `weft server --default-quota-<kind> N` (env WEFT_DEFAULT_QUOTA_<KIND>). */
const defaultQuotaOption = (k: QuotaKind) =>
  new Option(`--default-quota-${kebab(k)} <n>`, `${QUOTA_WHAT[k]} a tenant without its own quota may hold (default ${DEFAULT_QUOTAS[k]})`)
    .env(`WEFT_DEFAULT_QUOTA_${kebab(k).toUpperCase().replaceAll('-', '_')}`)
    .argParser(intIn(`--default-quota-${kebab(k)}`, 0, QUOTA_MAX));
const collect = (v: string, prev: string[] = []) => [...prev, v];
/** Like collect, and each value may be a comma-separated list. */
const collectList = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((x) => x.trim())];
const bool = (v: string) => {
  if (v === 'true' || v === 'yes' || v === 'on') return true;
  if (v === 'false' || v === 'no' || v === 'off') return false;
  throw new InvalidArgumentError('must be true or false');
};
/**
 * A switch (`--lazy`) set from its environment variable is on or off as the
 * value says; commander alone would take any value, `WEFT_LAZY=no` too, as on.
 * Undefined when the switch did not come from the environment; empty is off.
 */
function envSwitch(c: Command, key: string, env: string): boolean | undefined {
  if (c.getOptionValueSource(key) !== 'env') return undefined;
  const v = (process.env[env] ?? '').trim().toLowerCase();
  if (v === '') return false;
  try {
    return bool(v);
  } catch {
    throw new WeftError('E_INVALID_ARG', `invalid ${env} ${JSON.stringify(process.env[env])}: must be true or false (yes/no, on/off)`, env);
  }
}
/**
 * A certificate flag and its key flag: both or neither (E_INVALID_ARG naming
 * the missing one otherwise); with both, the two files and `extra`.
 */
function pair<T extends object>(certFlag: string, cert: string | undefined, keyFlag: string, key: string | undefined, extra: T) {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    const [given, missing] = cert === undefined ? [keyFlag, certFlag] : [certFlag, keyFlag];
    throw new WeftError('E_INVALID_ARG', `invalid ${missing} (none): ${given} is given; TLS needs both ${certFlag} and ${keyFlag}`, missing);
  }
  return { cert, key, ...extra };
}
/** Drops undefined fields so the API sees only what the operator set. */
const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

// --- server ---------------------------------------------------------------
program
  .command('server')
  .description('run the control plane server (REST API)')
  .addOption(new Option('--db <url>', 'store: sqlite:PATH or postgres://...').env('WEFT_DB').default('sqlite:weft.db'))
  .addOption(
    new Option('--api-listen <host:port>', 'where the API listens (`weft server --api HOST:PORT` works too; default 127.0.0.1:8080)').env('WEFT_API_LISTEN'),
  )
  .addOption(new Option('--svp <host:port>', 'where the SVP lookup service listens, or "off"').env('WEFT_SVP_LISTEN').default('127.0.0.1:1296'))
  .addOption(new Option('--stream <host:port>', 'where the agents\' push stream listens, or "off"').env('WEFT_STREAM_LISTEN').default('127.0.0.1:1297'))
  .addOption(new Option('--stream-tls-cert <file>', 'serve the push stream over TLS with this certificate (PEM)').env('WEFT_STREAM_TLS_CERT'))
  .addOption(new Option('--stream-tls-key <file>', 'and this key (PEM)').env('WEFT_STREAM_TLS_KEY'))
  .addOption(
    new Option('--stream-tls-ca <file>', "mutual TLS: require agents' certificates signed by this CA (PEM), each naming its host (CN or DNS SAN)").env(
      'WEFT_STREAM_TLS_CA',
    ),
  )
  .addOption(new Option('--api-tls-cert <file>', 'serve the API over HTTPS with this certificate (PEM)').env('WEFT_API_TLS_CERT'))
  .addOption(new Option('--api-tls-key <file>', 'and this key (PEM)').env('WEFT_API_TLS_KEY'))
  .addOption(new Option('--placement <policy>', 'placement policy').choices(PLACEMENT_POLICIES).default('spread').env('WEFT_PLACEMENT'))
  .addOption(
    new Option('--cpu-overcommit <ratio>', 'vCPUs per physical CPU that placement allows')
      .argParser((v) => {
        const n = Number(v);
        if (!(n >= 1 && n <= 64)) throw new InvalidArgumentError('must be a number 1..64');
        return n;
      })
      .default(1)
      .env('WEFT_CPU_OVERCOMMIT'),
  )
  .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info').env('WEFT_LOG_LEVEL'))
  .addOption(
    new Option('--api-headers-timeout <ms>', 'the API closes a request whose headers took longer (default 10000)')
      .argParser(int('--api-headers-timeout'))
      .env('WEFT_API_HEADERS_TIMEOUT'),
  )
  .addOption(
    new Option('--api-request-timeout <ms>', 'the API closes a request whose headers and body took longer (default 30000)')
      .argParser(int('--api-request-timeout'))
      .env('WEFT_API_REQUEST_TIMEOUT'),
  )
  .addOption(
    new Option('--api-keepalive-timeout <ms>', 'the API closes a keep-alive connection idle longer between requests (default 10000)')
      .argParser(int('--api-keepalive-timeout'))
      .env('WEFT_API_KEEPALIVE_TIMEOUT'),
  )
  .addOption(
    new Option('--api-idle-timeout <ms>', 'the API closes a connection with no traffic for longer (default 60000)')
      .argParser(int('--api-idle-timeout'))
      .env('WEFT_API_IDLE_TIMEOUT'),
  )
  .addOption(
    new Option(
      '--max-tenant-arp-rate <pps>',
      `most a tenant may set a network's arpRate to; operators may go to ${RATE_MAX} (default ${DEFAULT_TENANT_RATE_MAX.arpRate})`,
    )
      .env('WEFT_MAX_TENANT_ARP_RATE')
      .argParser(intIn('--max-tenant-arp-rate', 1, RATE_MAX)),
  )
  .addOption(
    new Option(
      '--max-tenant-nd-rate <pps>',
      `most a tenant may set a network's ndRate to; operators may go to ${RATE_MAX} (default ${DEFAULT_TENANT_RATE_MAX.ndRate})`,
    )
      .env('WEFT_MAX_TENANT_ND_RATE')
      .argParser(intIn('--max-tenant-nd-rate', 1, RATE_MAX)),
  )
  .addOption(
    new Option('--svp-max-connections <n>', 'connections the SVP listener holds open at once; more are refused (default 4096)')
      .argParser(intIn('--svp-max-connections', 1, 1_000_000))
      .env('WEFT_SVP_MAX_CONNECTIONS'),
  )
  .addOption(
    new Option('--svp-max-connections-per-source <n>', 'of those, connections from one source address (default 16)')
      .argParser(intIn('--svp-max-connections-per-source', 1, 1_000_000))
      .env('WEFT_SVP_MAX_CONNECTIONS_PER_SOURCE'),
  )
  .addOption(
    new Option('--stream-max-connections <n>', 'connections the push-stream listener holds open at once; more are refused (default 4096)')
      .argParser(intIn('--stream-max-connections', 1, 1_000_000))
      .env('WEFT_STREAM_MAX_CONNECTIONS'),
  )
  .addOption(
    new Option('--stream-max-connections-per-source <n>', 'of those, connections from one source address (default 8)')
      .argParser(intIn('--stream-max-connections-per-source', 1, 1_000_000))
      .env('WEFT_STREAM_MAX_CONNECTIONS_PER_SOURCE'),
  )
  .addOption(
    new Option('--api-max-connections <n>', 'connections the API listener holds open at once; more are refused (default 1024)')
      .argParser(intIn('--api-max-connections', 1, 1_000_000))
      .env('WEFT_API_MAX_CONNECTIONS'),
  )
  .addOption(
    new Option('--api-max-connections-per-source <n>', 'of those, connections from one source address (default 256)')
      .argParser(intIn('--api-max-connections-per-source', 1, 1_000_000))
      .env('WEFT_API_MAX_CONNECTIONS_PER_SOURCE'),
  )
  .addOption(
    new Option('--svp-idle-timeout <ms>', 'SVP closes a connection with no traffic for longer (default 300000)')
      .argParser(intIn('--svp-idle-timeout', 1, 3_600_000))
      .env('WEFT_SVP_IDLE_TIMEOUT'),
  )
  .addOption(
    new Option('--stream-hello-timeout <ms>', 'the push stream closes a connection that has not said hello within this (default 10000)')
      .argParser(intIn('--stream-hello-timeout', 1, 3_600_000))
      .env('WEFT_STREAM_HELLO_TIMEOUT'),
  )
  .addOption(
    new Option('--stream-stall-timeout <ms>', 'the push stream closes a connection that leaves a frame unfinished for longer (default 30000)')
      .argParser(intIn('--stream-stall-timeout', 1, 3_600_000))
      .env('WEFT_STREAM_STALL_TIMEOUT'),
  )
  .addOption(defaultQuotaOption('instances'))
  .addOption(defaultQuotaOption('ports'))
  .addOption(defaultQuotaOption('networks'))
  .addOption(defaultQuotaOption('publicIpv4'))
  .addOption(defaultQuotaOption('vips'))
  .action(async (o, cmd: Command) => {
    // `weft server --api HOST:PORT` (the global --api, given on the command
    // line) names the listen address too, before WEFT_API_LISTEN; WEFT_API in the environment does not.
    const fromApi =
      program.getOptionValueSource('api') === 'cli'
        ? globals()
            .api.replace(/^https?:\/\//, '')
            .replace(/\/.*$/, '')
        : undefined;
    // The server's modules (store drivers, HTTP) load only for the commands that need them.
    const { startServer } = await import('../server/server.js');
    const s = await startServer({
      db: o.db,
      api: (cmd.getOptionValueSource('apiListen') === 'cli' ? o.apiListen : (fromApi ?? o.apiListen)) ?? '127.0.0.1:8080',
      svp: o.svp,
      stream: o.stream,
      streamTls: pair('--stream-tls-cert', o.streamTlsCert, '--stream-tls-key', o.streamTlsKey, { ca: o.streamTlsCa }),
      streamTlsCa: o.streamTlsCa,
      apiTls: pair('--api-tls-cert', o.apiTlsCert, '--api-tls-key', o.apiTlsKey, {}),
      placement: o.placement,
      cpuOvercommit: o.cpuOvercommit,
      adminToken: process.env.WEFT_ADMIN_TOKEN,
      logLevel: o.logLevel,
      apiTimeouts: defined({ headersMs: o.apiHeadersTimeout, requestMs: o.apiRequestTimeout, keepAliveMs: o.apiKeepaliveTimeout, idleMs: o.apiIdleTimeout }),
      tenantRateMax: defined({ arpRate: o.maxTenantArpRate, ndRate: o.maxTenantNdRate }),
      limits: {
        svp: defined({ max: o.svpMaxConnections, perSource: o.svpMaxConnectionsPerSource }),
        stream: defined({ max: o.streamMaxConnections, perSource: o.streamMaxConnectionsPerSource }),
        api: defined({ max: o.apiMaxConnections, perSource: o.apiMaxConnectionsPerSource }),
      },
      svpIdleMs: o.svpIdleTimeout,
      streamHelloMs: o.streamHelloTimeout,
      streamStallMs: o.streamStallTimeout,
      quotas: defined(Object.fromEntries(QUOTA_KINDS.map((k) => [k, o[`defaultQuota${k[0]?.toUpperCase()}${k.slice(1)}`]]))),
    });
    process.stderr.write(`weft server: store ${s.store.location}, API ${s.apiUrl}, SVP ${s.svpAddress ?? 'off'}, stream ${s.streamAddress ?? 'off'}\n`);
    const stop = async (sig: string) => {
      process.stderr.write(`weft server: ${sig}, shutting down\n`);
      await s.close();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });

// --- agent ----------------------------------------------------------------
program
  .command('agent')
  .description('run the host agent on a hypervisor (root): programs VXLAN, bridges, FDB, neighbours and port guards')
  .addOption(
    new Option('--server <address[,address...]>', "the server's address on the management network, or its replicas' comma-separated, tried in order")
      .env('WEFT_SERVER')
      .makeOptionMandatory(),
  )
  .addOption(new Option('--host <host>', 'this hypervisor: host name or id').env('WEFT_HOST').makeOptionMandatory())
  .addOption(
    new Option('--token-file <file>', "file holding this host's agent token (or the token itself in env WEFT_AGENT_TOKEN)").env('WEFT_AGENT_TOKEN_FILE'),
  )
  .addOption(new Option('--stream-port <port>', "the server's push-stream port").argParser(int('--stream-port')).default(1297).env('WEFT_STREAM_PORT'))
  .addOption(new Option('--svp-port <port>', "the server's SVP port (lazy mode)").argParser(int('--svp-port')).default(1296).env('WEFT_SVP_PORT'))
  .addOption(
    new Option('--stream-tls-ca <file>', "connect to the push stream with TLS, trusting this CA (PEM) for the server's certificate").env('WEFT_AGENT_TLS_CA'),
  )
  .addOption(new Option('--stream-tls-cert <file>', "mutual TLS: this host's certificate (PEM, CN or a DNS SAN = the host's name)").env('WEFT_AGENT_TLS_CERT'))
  .addOption(new Option('--stream-tls-key <file>', 'and its key (PEM)').env('WEFT_AGENT_TLS_KEY'))
  // The first name of --stream-tls-ca, kept for existing units.
  .addOption(new Option('--tls-ca <file>', 'old name of --stream-tls-ca').env('WEFT_TLS_CA').hideHelp())
  .addOption(
    new Option(
      '--lazy',
      'program nothing remote up front: answer kernel misses with SVP lookups, apply SVP shoot-downs (from the environment: true or false)',
    ).env('WEFT_LAZY'),
  )
  .addOption(new Option('--arp-rate <pps>', 'per-port ARP limit for networks that set none').argParser(int('--arp-rate')).env('WEFT_ARP_RATE'))
  .addOption(new Option('--nd-rate <pps>', 'per-port ND limit for networks that set none').argParser(int('--nd-rate')).env('WEFT_ND_RATE'))
  .addOption(
    new Option(
      '--metrics <host:port>',
      '/metrics and /healthz listen address, or "off"; no host (":9478") is the management address (the one the server is reached from)',
    )
      .env('WEFT_AGENT_METRICS')
      .default(':9478'),
  )
  .addOption(new Option('--no-routing', 'no BGP: leave BIRD, routed ports and VIPs alone (from the environment: true or false)').env('WEFT_NO_ROUTING'))
  .addOption(new Option('--bird-socket <path>', "BIRD's control socket").default('/run/bird/bird.ctl').env('WEFT_BIRD_SOCKET'))
  .addOption(new Option('--bird-conf <path>', 'the BIRD config file weft owns and rewrites').default('/etc/bird/bird.conf').env('WEFT_BIRD_CONF'))
  .addOption(new Option('--rpki <host:port>', 'RTR validator for RPKI origin validation (default: the static --roa-file set)').env('WEFT_RPKI'))
  .addOption(new Option('--roa-file <file>', 'JSON list of ROAs [{prefix, maxLength, asn}] used when no --rpki validator is set').env('WEFT_ROA_FILE'))
  .addOption(new Option('--irr-file <file>', 'JSON of IRR prefix lists by peer ASN {"64500": ["203.0.113.0/24{24,32}"]}, cached offline').env('WEFT_IRR_FILE'))
  .addOption(
    new Option('--bfd-interval <ms>', 'BFD transmit/receive interval for sessions with bfd')
      .argParser(int('--bfd-interval'))
      .default(100)
      .env('WEFT_BFD_INTERVAL'),
  )
  .addOption(new Option('--bfd-multiplier <n>', 'BFD detection multiplier').argParser(int('--bfd-multiplier')).default(3).env('WEFT_BFD_MULTIPLIER'))
  .addOption(
    new Option('--vm-dir <dir>', "manage this host's VMs: their profiles' files and NoCloud seeds under DIR/instances (docs/vm-profiles.md)").env(
      'WEFT_VM_DIR',
    ),
  )
  .addOption(
    new Option('--libvirt <uri>', 'with --vm-dir: define, start, stop and undefine the domains through this libvirt connection (qemu:///system)').env(
      'WEFT_LIBVIRT',
    ),
  )
  .addOption(
    new Option('--vm-domain-type <type>', "libvirt's domain type: kvm, or qemu where there is no /dev/kvm")
      .choices(['kvm', 'qemu', 'test'])
      .default('kvm')
      .env('WEFT_VM_DOMAIN_TYPE'),
  )
  .addOption(new Option('--log-level <level>', 'log level (JSON lines on stdout)').choices(LOG_LEVELS).default('info').env('WEFT_AGENT_LOG_LEVEL'))
  .addOption(new Option('--netns <name>', "program this named network namespace instead of the agent's own (labs, benchmarks)").env('WEFT_NETNS').hideHelp())
  .action(async (o, cmd: Command) => {
    const lazy = envSwitch(cmd, 'lazy', 'WEFT_LAZY') ?? o.lazy === true;
    const routing = envSwitch(cmd, 'routing', 'WEFT_NO_ROUTING') === true ? false : o.routing;
    const { parseServers, runAgent } = await import('../agent/main.js');
    const servers = parseServers(o.server);
    // `weft agent --token-file F`: commander gives a flag both the program and the command know to the program.
    const tokenFile = o.tokenFile ?? (program.getOptionValueSource('tokenFile') === 'cli' ? globals().tokenFile : undefined);
    const token = tokenFile ? readSecretFile('--token-file', tokenFile) : process.env.WEFT_AGENT_TOKEN;
    if (!token)
      throw new WeftError('E_INVALID_ARG', 'invalid --token-file (none): an agent token is required (--token-file FILE or env WEFT_AGENT_TOKEN)', 'token');
    if (o.libvirt !== undefined && o.vmDir === undefined)
      throw new WeftError('E_INVALID_ARG', `invalid --libvirt ${o.libvirt}: needs --vm-dir, where the domains' files and seeds are kept`, '--libvirt');
    for (const [name, v] of [
      ['--arp-rate', o.arpRate],
      ['--nd-rate', o.ndRate],
    ] as const)
      if (v !== undefined && !(v >= 1 && v <= 100000)) throw new WeftError('E_INVALID_ARG', `invalid ${name} ${v}: must be 1..100000 packets/s`, name);
    const a = await runAgent({
      server: servers,
      streamPort: o.streamPort,
      svpPort: o.svpPort,
      host: o.host,
      token,
      tokenFile,
      streamTls: { ca: o.streamTlsCa ?? o.tlsCa, cert: o.streamTlsCert, key: o.streamTlsKey },
      lazy,
      arpRate: o.arpRate,
      ndRate: o.ndRate,
      metrics: o.metrics,
      netns: o.netns,
      log: pinoLog(o.logLevel),
      vm: o.vmDir === undefined ? null : { dir: o.vmDir, libvirt: o.libvirt, domainType: o.vmDomainType },
      routing:
        routing === false
          ? null
          : {
              birdSocket: o.birdSocket,
              birdConf: o.birdConf,
              flags: { rpki: o.rpki, roaFile: o.roaFile, irrFile: o.irrFile, bfdIntervalMs: o.bfdInterval, bfdMultiplier: o.bfdMultiplier },
            },
    });
    const vm = o.vmDir === undefined ? 'off' : `${o.vmDir}${o.libvirt ? ` via ${o.libvirt}` : ' (files only: the VM lifecycle is external)'}`;
    process.stderr.write(`weft agent: host ${o.host}, server ${servers.join(', ')}${lazy ? ' (lazy)' : ''}, metrics ${a.metricsAddress ?? 'off'}, VMs ${vm}\n`);
    const stop = async (sig: string) => {
      process.stderr.write(`weft agent: ${sig}, stopping (kernel state is left in place)\n`);
      await a.stop();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });

// --- entity commands -------------------------------------------------------
interface EntitySpec {
  name: string;
  path: string;
  filters: string[];
  /** What names one in get, update and delete (default "id or name"). */
  ref?: string;
  /** Filters with a fixed set of values: a usage error (exit 2) before any request. */
  choices?: Record<string, readonly string[]>;
  create?: (c: Command) => Command;
  body?: (args: string[], o: Record<string, unknown>) => Record<string, unknown>;
  update?: (c: Command) => Command;
  patch?: (o: Record<string, unknown>) => Record<string, unknown>;
}

function entity(spec: EntitySpec) {
  const cmd = program.command(spec.name).description(`manage ${spec.path}`);
  cmd
    .command('list')
    .description(`list ${spec.path}`)
    .option('--limit <n>', 'at most this many (default: all)', int('limit'))
    .option('--all', 'follow pages to the end (the default without --limit)')
    .action(async (o) => {
      const filters: Record<string, string | undefined> = {};
      for (const f of spec.filters) filters[f] = o[f];
      if (o.limit !== undefined) {
        const qs = new URLSearchParams(defined({ ...filters, limit: String(o.limit) }) as Record<string, string>);
        await out(spec.path, (await client().get<{ items: unknown[] }>(`/v1/${spec.path}?${qs}`)).items);
      } else await out(spec.path, await client().all(`/v1/${spec.path}`, filters));
    });
  const list = cmd.commands.at(-1) as Command;
  for (const f of spec.filters) {
    const allowed = spec.choices?.[f];
    list.addOption(
      allowed
        ? new Option(`--${f} <${f}>`, `only those with this ${f}`).choices(allowed)
        : new Option(
            `--${f} <${f}>`,
            f === 'mac' ? 'only the port with this MAC' : f === 'name' ? 'only those with this name' : `only those with this ${f} (id or name)`,
          ),
    );
  }
  cmd
    .command('get <ref>')
    .description(`show one, by ${spec.ref ?? 'id or name'}`)
    .action(async (ref: string) => out(spec.path, await client().get(`/v1/${spec.path}/${encodeURIComponent(ref)}`)));
  cmd
    .command('delete <ref>')
    .description(`delete one, by ${spec.ref ?? 'id or name'}`)
    .action(async (ref: string) => {
      await client().delete(`/v1/${spec.path}/${encodeURIComponent(ref)}`);
      const f = globals().output;
      if (f === 'name') process.stdout.write(`${spec.name}/${ref}\n`);
      else if (!isData(f)) process.stdout.write(`deleted ${spec.name} ${ref}\n`);
    });
  if (spec.create && spec.body) {
    const body = spec.body;
    spec.create(cmd.command('create').description(`create one of ${spec.path}`)).action(async (...a: unknown[]) => {
      const c = a.at(-1) as Command;
      await out(spec.path, await client().post(`/v1/${spec.path}`, defined(body(c.args, c.opts()))));
    });
  }
  if (spec.update && spec.patch) {
    const patch = spec.patch;
    spec
      .update(cmd.command('update <ref>').description(`change one of ${spec.path}, by ${spec.ref ?? 'id or name'}`))
      .action(async (ref: string, o: Record<string, unknown>) => {
        await out(spec.path, await client().patch(`/v1/${spec.path}/${encodeURIComponent(ref)}`, defined(patch(o))));
      });
  }
  return cmd;
}

/** A site's VM settings (docs/vm-profiles.md), as `site create` and `site update` take them. */
function vmOpts(c: Command): Command {
  return c
    .option('--image-pool <pool>', 'disks are volumes of this libvirt storage pool, named by the image ("none": files from --image-path)')
    .option('--image-path <path>', 'disk file when there is no pool; {image} and {instance} are replaced (default /var/lib/weft/images/{image}.qcow2)')
    .option('--dns-server <ip[,ip...]>', 'the guests\' resolvers, at most 3 (repeatable; replaces the list; "none" for none)', collectList)
    .option('--arp-timeout-ms <ms>', "the guests' ARP reachable time (default 14400000)", int('arp-timeout-ms'))
    .option('--nd-timeout-ms <ms>', "the guests' NDP reachable time (default 14400000)", int('nd-timeout-ms'))
    .option('--shared-storage', 'instance disks are on shared storage: moves are live migrations')
    .option('--no-shared-storage', 'they are not (the default): a move defines the domain on the new host')
    .option(
      '--migration-uri <uri>',
      "where live migrations go: a libvirt URI with {address} (the destination's underlay address) or {host} (its name) (default qemu+tls://{address}/system)",
    );
}
function vmFields(o: Record<string, unknown>): Record<string, unknown> | undefined {
  const dns = o.dnsServer as string[] | undefined;
  const vm = defined({
    imagePool: o.imagePool === 'none' ? null : o.imagePool,
    imagePath: o.imagePath,
    dnsServers: dns === undefined ? undefined : dns.length === 1 && dns[0] === 'none' ? [] : dns,
    arpTimeoutMs: o.arpTimeoutMs,
    ndTimeoutMs: o.ndTimeoutMs,
    sharedStorage: o.sharedStorage,
    migrationUri: o.migrationUri,
  });
  return Object.keys(vm).length === 0 ? undefined : vm;
}
entity({
  name: 'site',
  path: 'sites',
  filters: ['name'],
  create: (c) =>
    vmOpts(c)
      .argument('<name>')
      .option('--underlay-pool <cidr>', "range hosts' underlay IPs come from")
      .option('--ipv4-pool <cidr>', 'public IPv4 range (repeatable)', collect)
      .option('--ipv6-block <cidr>', 'IPv6 block hosts get a /64 from')
      .addHelpText('after', "\nThe VM flags set what its instances' profiles take from the site (docs/vm-profiles.md)."),
  body: ([name], o) => ({ name, underlayPool: o.underlayPool, ipv4Pools: o.ipv4Pool, ipv6Block: o.ipv6Block, vm: vmFields(o) }),
  update: vmOpts,
  patch: (o) => ({ vm: vmFields(o) }),
});
entity({
  name: 'rack',
  path: 'racks',
  filters: ['site', 'name'],
  create: (c) => c.argument('<name>').requiredOption('--site <site>'),
  body: ([name], o) => ({ name, site: o.site }),
});
/** Whether the host is an SVP client, and the addresses besides its underlay its shoot-down log is served to. */
const svpClientOpts = (c: Command, update: boolean) => {
  c.option('--svp-client', 'it polls SVP shoot-downs (varpd, or a lazy-mode agent): it gets them')
    .option('--no-svp-client', 'it does not (the default): no shoot-downs are kept for it')
    .option(
      '--svp-client-address <ip[,ip...]>',
      `another source address its SVP log is served to besides its underlay (repeatable${update ? '; replaces the list' : ''})`,
      collectList,
    );
  return update ? c.option('--no-svp-client-addresses', 'serve its SVP log to its underlay address only') : c;
};
const capacityOpts = (c: Command) =>
  c.option('--cpus <n>', 'CPUs', int('cpus')).option('--memory-mb <n>', 'memory, MB', int('memory-mb')).option('--disk-gb <n>', 'disk, GB', int('disk-gb'));
entity({
  name: 'host',
  path: 'hosts',
  filters: ['site', 'rack', 'state', 'name'],
  choices: { state: HOST_STATES },
  create: (c) =>
    svpClientOpts(
      capacityOpts(
        c
          .argument('<name>')
          .requiredOption('--site <site>')
          .option('--rack <rack>')
          .option('--underlay-ip <ip>', 'default: from the site underlay pool')
          .option('--asn <asn>', 'BGP ASN', int('asn'))
          .option('--ipv6-prefix <cidr>', "the host's /64 (default: from the site's block)")
          .addOption(new Option('--state <state>').choices(HOST_STATES)),
      ),
      false,
    ),
  body: ([name], o) => ({
    name,
    site: o.site,
    rack: o.rack,
    underlayIp: o.underlayIp,
    asn: o.asn,
    ipv6Prefix: o.ipv6Prefix,
    state: o.state,
    capacity: { cpus: o.cpus ?? 16, memoryMb: o.memoryMb ?? 65536, diskGb: o.diskGb ?? 1000 },
    svpClient: o.svpClient,
    svpClientAddresses: o.svpClientAddress,
  }),
  update: (c) =>
    svpClientOpts(
      capacityOpts(c.addOption(new Option('--state <state>').choices(HOST_STATES)).option('--asn <asn>', 'BGP ASN', int('asn')).option('--underlay-ip <ip>')),
      true,
    ),
  patch: (o) => ({
    state: o.state,
    asn: o.asn,
    underlayIp: o.underlayIp,
    svpClient: o.svpClient,
    svpClientAddresses: o.svpClientAddresses === false ? [] : o.svpClientAddress,
    capacity: o.cpus !== undefined || o.memoryMb !== undefined || o.diskGb !== undefined ? { cpus: o.cpus, memoryMb: o.memoryMb, diskGb: o.diskGb } : undefined,
  }),
});
entity({
  name: 'tenant',
  path: 'tenants',
  filters: ['name'],
  create: (c) => c.argument('<name>'),
  body: ([name]) => ({ name }),
  // Operators only. `--quota-public-ipv4 default` goes back to the server's default.
  update: (c) => {
    for (const k of QUOTA_KINDS) c.option(`--quota-${kebab(k)} <n>`, `${QUOTA_WHAT[k]} it may hold, or "default"`, quotaArg(`--quota-${kebab(k)}`));
    return c;
  },
  patch: (o) => {
    const given = (k: string) => o[`quota${k[0]?.toUpperCase()}${k.slice(1)}`];
    const quotas = defined(Object.fromEntries(QUOTA_KINDS.map((k) => [k, given(k) === 'default' ? null : given(k)])));
    return { quotas: Object.keys(quotas).length > 0 ? quotas : undefined };
  },
});
entity({
  name: 'network',
  path: 'networks',
  filters: ['tenant', 'kind', 'site', 'name'],
  choices: { kind: NETWORK_KINDS },
  create: (c) =>
    c
      .argument('<name>')
      .option('--tenant <tenant>', 'owner (implied by a tenant token)')
      .addOption(new Option('--kind <kind>').choices(NETWORK_KINDS).default('overlay'))
      .option('--subnet <cidr>', 'IPv4 or IPv6 subnet (repeatable; overlay)', collect)
      .option('--vni <vni>', 'VXLAN id (default: allocated)', int('vni'))
      .option('--site <site>', 'site (routed networks)')
      .option('--mtu <mtu>', 'MTU', int('mtu'))
      .option('--arp-rate <pps>', 'per-port ARP limit', int('arp-rate'))
      .option('--nd-rate <pps>', 'per-port NDP limit', int('nd-rate')),
  body: ([name], o) => ({
    name,
    tenant: o.tenant,
    kind: o.kind,
    subnets: o.subnet,
    vni: o.vni,
    site: o.site,
    mtu: o.mtu,
    arpRate: o.arpRate,
    ndRate: o.ndRate,
  }),
  update: (c) =>
    c
      .option('--name <name>')
      .option('--mtu <mtu>', 'MTU', int('mtu'))
      .option('--arp-rate <pps>', '', int('arp-rate'))
      .option('--nd-rate <pps>', '', int('nd-rate')),
  patch: (o) => ({ name: o.name, mtu: o.mtu, arpRate: o.arpRate, ndRate: o.ndRate }),
});
const instanceCmd = entity({
  name: 'instance',
  path: 'instances',
  filters: ['tenant', 'site', 'host', 'state', 'name'],
  choices: { state: INSTANCE_STATES },
  create: (c) =>
    capacityOpts(
      c
        .argument('<name>')
        .requiredOption('--site <site>')
        .option('--tenant <tenant>', 'owner (implied by a tenant token)')
        .option('--size <size>', 'nano, small, medium, large or xlarge')
        .option('--host <host>', 'pin to this host instead of placement (operators)')
        .option('--image <image>', 'the image its disk is made from (its profile needs one)')
        .option('--net <network>', 'a port on this network (repeatable), as NETWORK[,mac=M][,ipv4=A][,ipv6=A]', collect),
    ),
  body: ([name], o) => ({
    name,
    site: o.site,
    tenant: o.tenant,
    size: o.size,
    host: o.host,
    cpus: o.cpus,
    memoryMb: o.memoryMb,
    diskGb: o.diskGb,
    image: o.image,
    ports: ((o.net as string[] | undefined) ?? []).map(parsePortSpec),
  }),
  update: (c) =>
    c
      .option('--name <name>')
      .addOption(new Option('--state <state>').choices(INSTANCE_STATES))
      .option('--image <image>', 'the image its disk is made from ("none" to clear)'),
  patch: (o) => ({ name: o.name, state: o.state, image: o.image === 'none' ? null : o.image }),
});
instanceCmd
  .command('profile <ref>')
  .description("print the instance's VM profile: libvirt domain XML and its cloud-init seed (docs/vm-profiles.md)")
  .addOption(new Option('--part <part>', 'only this part, as the file it is').choices(PROFILE_PARTS))
  .action(async (ref: string, o: { part?: ProfilePart }) => {
    const p = await client().get<Record<string, string>>(`/v1/instances/${encodeURIComponent(ref)}/profile`);
    const key = { domain: 'domain', 'meta-data': 'metaData', 'network-config': 'networkConfig', 'user-data': 'userData' } as const;
    if (o.part !== undefined) process.stdout.write(p[key[o.part]] ?? '');
    else if (asData()) printData(p);
    else for (const part of PROFILE_PARTS) process.stdout.write(`# --- ${part}\n${p[key[part]]}${p[key[part]]?.endsWith('\n') ? '' : '\n'}`);
  });
instanceCmd
  .command('migrate <ref>')
  .description('move an instance to another host of its site')
  .option('--to <host>', 'target host (default: placement picks)')
  .action(
    async (ref: string, o: { to?: string }) =>
      await out('instances', await client().post(`/v1/instances/${encodeURIComponent(ref)}/migrate`, defined({ target: o.to }))),
  );
entity({
  name: 'port',
  path: 'ports',
  ref: 'id or MAC',
  filters: ['tenant', 'instance', 'network', 'mac'],
  create: (c) =>
    c.requiredOption('--instance <instance>').requiredOption('--network <network>').option('--mac <mac>').option('--ipv4 <ip>').option('--ipv6 <ip>'),
  body: (_a, o) => ({ instance: o.instance, network: o.network, mac: o.mac, ipv4: o.ipv4, ipv6: o.ipv6 }),
  update: (c) => c.option('--ipv4 <ip>', 'new IPv4 ("none" to drop)').option('--ipv6 <ip>', 'new IPv6 ("none" to drop)'),
  patch: (o) => ({ ipv4: o.ipv4 === 'none' ? null : o.ipv4, ipv6: o.ipv6 === 'none' ? null : o.ipv6 }),
});
entity({
  name: 'vip',
  path: 'vips',
  filters: ['tenant', 'site', 'name'],
  create: (c) =>
    c
      .argument('<name>')
      .option('--tenant <tenant>')
      .option('--site <site>', 'allocate the address from this site')
      .option('--address <ip>')
      .option('--backend <port>', 'backend port id (repeatable)', collect)
      .addOption(new Option('--check <type>', 'health check').choices(HEALTH_CHECK_TYPES).default('tcp'))
      .requiredOption('--check-port <port>', 'port the check connects to', int('check-port'))
      .option('--check-path <path>', 'HTTP path')
      .option('--check-interval-ms <ms>', '', int('check-interval-ms'))
      .option('--rise <n>', '', int('rise'))
      .option('--fall <n>', '', int('fall')),
  body: ([name], o) => ({
    name,
    tenant: o.tenant,
    site: o.site,
    address: o.address,
    backends: o.backend,
    healthCheck: defined({ type: o.check, port: o.checkPort, path: o.checkPath, intervalMs: o.checkIntervalMs, rise: o.rise, fall: o.fall }),
  }),
  update: (c) => c.option('--backend <port>', 'backend port id (repeatable; replaces the list)', collect).option('--no-backends', 'remove every backend'),
  patch: (o) => ({ backends: o.backends === false ? [] : o.backend }),
});
entity({
  name: 'peer',
  path: 'peers',
  ref: 'id or neighbor address (give the id when several hosts or racks have one)',
  filters: ['host', 'rack'],
  create: (c) =>
    c
      .option('--host <host>', 'a session of this host')
      .option('--rack <rack>', 'a session of every host in this rack')
      .requiredOption('--neighbor <ip>')
      .requiredOption('--remote-asn <asn>', '', int('remote-asn'))
      .addOption(new Option('--import <policy>').choices(IMPORT_POLICIES))
      .option('--max-prefix <n>', '', int('max-prefix'))
      .addOption(new Option('--max-prefix-action <action>', 'when the peer sends more (default restart)').choices(MAX_PREFIX_ACTIONS))
      .option('--bfd <bool>', '', bool)
      .option('--multiprotocol <bool>', 'both families on this session (IPv6 neighbor)', bool)
      .option('--description <text>'),
  body: (_a, o) => ({ host: o.host, rack: o.rack, ...peerFields(o) }),
  update: (c) =>
    c
      .option('--neighbor <ip>')
      .option('--remote-asn <asn>', '', int('remote-asn'))
      .addOption(new Option('--import <policy>').choices(IMPORT_POLICIES))
      .option('--max-prefix <n>', '', int('max-prefix'))
      .addOption(new Option('--max-prefix-action <action>').choices(MAX_PREFIX_ACTIONS))
      .option('--bfd <bool>', '', bool)
      .option('--multiprotocol <bool>', '', bool)
      .option('--description <text>'),
  patch: peerFields,
});

entity({
  name: 'router',
  path: 'routers',
  filters: ['site', 'rack', 'role', 'name'],
  choices: { role: ROUTER_ROLES },
  create: (c) =>
    routerOpts(
      c
        .argument('<name>')
        .addOption(new Option('--role <role>', 'tor (of a rack), spine (of a site), border (WAN)').choices(ROUTER_ROLES).makeOptionMandatory())
        .requiredOption('--site <site>')
        .option('--rack <rack>', "a tor's rack"),
    ),
  body: ([name], o) => ({ name, role: o.role, site: o.site, rack: o.rack, ...routerFields(o) }),
  update: (c) => routerOpts(c.option('--name <name>')).option('--no-upstreams', 'remove every upstream'),
  patch: (o) => ({ name: o.name, ...routerFields(o), upstreams: o.upstreams === false ? [] : routerFields(o).upstreams }),
});

/** The flags a router's create and update share. */
function routerOpts(c: Command): Command {
  return c
    .option('--asn <asn>', 'its BGP ASN', int('asn'))
    .option('--router-id <ip>', 'BGP router id (IPv4)')
    .option('--loopback <ip>', 'the address its fabric neighbours peer with')
    .option('--mgmt-address <ip>', 'where weft reaches it')
    .addOption(new Option('--platform <platform>', 'what it runs (default bird)').choices(ROUTER_PLATFORMS))
    .option('--bfd <bool>', 'BFD on its sessions to other fabric routers', bool)
    .option('--max-prefix <n>', 'the most routes each session from below may send (default 1000)', int('max-prefix'))
    .option('--upstream <spec>', "a border's upstream (repeatable; replaces the list): NAME,NEIGHBOR,ASN[,max-prefix=N][,bfd=true]", collect);
}

function routerFields(o: Record<string, unknown>) {
  const ups = o.upstream as string[] | undefined;
  return {
    asn: o.asn,
    bgpRouterId: o.routerId,
    loopback: o.loopback,
    mgmtAddress: o.mgmtAddress,
    platform: o.platform,
    bfd: o.bfd,
    maxPrefix: o.maxPrefix,
    upstreams: ups?.map((spec) => {
      const [name, neighbor, asn, ...rest] = spec.split(',');
      if (!name || !neighbor || !asn) throw new InvalidArgumentError(`--upstream ${spec}: must be NAME,NEIGHBOR,ASN[,max-prefix=N][,bfd=true]`);
      const kv = Object.fromEntries(rest.map((r) => r.split('=') as [string, string]));
      return defined({
        name,
        neighbor,
        remoteAsn: Number(asn),
        maxPrefix: kv['max-prefix'] === undefined ? undefined : Number(kv['max-prefix']),
        bfd: kv.bfd === undefined ? undefined : kv.bfd === 'true',
      });
    }),
  };
}

const fabricCmd = program.command('fabric').description("fabric routers' configs from the source of truth: render, diff, apply (docs/fabric.md)");
const renderedConfig = async (ref: string, format?: string) =>
  client().get<string>(`/v1/routers/${encodeURIComponent(ref)}/config${format ? `?format=${format}` : ''}`);
fabricCmd
  .command('render <router>')
  .description("print the router's complete config")
  .addOption(new Option('--format <format>', "bird.conf or frr.conf (default: the router's platform)").choices(ROUTER_PLATFORMS))
  .action(async (ref: string, o: { format?: string }) => void process.stdout.write(await renderedConfig(ref, o.format)));
fabricCmd
  .command('diff <router>')
  .description('a unified diff from the config the router runs (on this machine) to the rendered one; exit 1 when they differ')
  .addOption(new Option('--format <format>').choices(ROUTER_PLATFORMS))
  .option('--running <file>', 'the config it runs (default /etc/bird/bird.conf, or /etc/frr/frr.conf)')
  .action(async (ref: string, o: { format?: string; running?: string }) => {
    const { unifiedDiff } = await import('../fabric/apply.js');
    const conf = await renderedConfig(ref, o.format);
    const running = o.running ?? (conf.startsWith('!') ? '/etc/frr/frr.conf' : '/etc/bird/bird.conf');
    const tmp = writeTemp(conf);
    const diff = await unifiedDiff(running, tmp);
    process.stdout.write(diff);
    if (diff !== '') process.exitCode = 1;
  });
fabricCmd
  .command('apply <router>')
  .description(
    "on the router: check the rendered config with the platform's own tool (bird -p, vtysh -C), apply it (birdc configure timeout, frr-reload.py), and roll back unless every session that was up is up again",
  )
  .option('--confirm-timeout <s>', 'seconds the sessions have to come back (default 60)', int('confirm-timeout'))
  .option('--bird-socket <path>', "BIRD's control socket", '/run/bird/bird.ctl')
  .option('--bird-conf <path>', "BIRD's config file", '/etc/bird/bird.conf')
  .option('--frr-conf <path>', "FRR's integrated config file", '/etc/frr/frr.conf')
  .option('--vty-socket <dir>', "the FRR daemons' vty socket directory (vtysh --vty_socket), when not FRR's default")
  .action(async (ref: string, o: { confirmTimeout?: number; birdSocket: string; birdConf: string; frrConf: string; vtySocket?: string }) => {
    const router = await client().get<{ platform: 'bird' | 'frr' }>(`/v1/routers/${encodeURIComponent(ref)}`);
    const conf = await renderedConfig(ref, router.platform);
    const { applyLocalBird, applyFrr } = await import('../fabric/apply.js');
    const timeout = o.confirmTimeout ?? 60;
    const r =
      router.platform === 'frr'
        ? await applyFrr(conf, { confPath: o.frrConf, confirmTimeoutS: timeout, ...(o.vtySocket ? { vtySocket: o.vtySocket } : {}) })
        : await applyLocalBird(conf, { socket: o.birdSocket, confPath: o.birdConf, confirmTimeoutS: timeout });
    if (r.confirmed) process.stdout.write(`applied and confirmed: ${ref} (${router.platform})\n`);
    else throw new WeftError('E_DATAPLANE', `rolled back: sessions ${r.down.join(', ')} did not come back within ${timeout} s`);
  });

/** Writes `text` to a new private temp file and returns its path. */
function writeTemp(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-fabric-'));
  const path = join(dir, 'rendered.conf');
  writeFileSync(path, text, { mode: 0o600 });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return path;
}

/** A peer's fields from `peer create` / `peer update` flags (unset ones stay undefined). */
function peerFields(o: Record<string, unknown>) {
  return {
    neighbor: o.neighbor,
    remoteAsn: o.remoteAsn,
    importPolicy: o.import,
    maxPrefix: o.maxPrefix,
    maxPrefixAction: o.maxPrefixAction,
    bfd: o.bfd,
    multiprotocol: o.multiprotocol,
    description: o.description,
  };
}

program
  .command('console <instance>')
  .description("attach to an instance's serial console (through the API and its host's agent; detach with Ctrl-])")
  .option('--force', 'take the console over from another session (one at a time)')
  .action(async (ref: string, o: { force?: boolean }) => {
    const g = globals();
    const { runConsole } = await import('./console.js');
    const code = await runConsole({
      base: g.api,
      token: apiToken(),
      ca: g.caFile === undefined ? undefined : readPem('--ca-file', g.caFile, 'certificate'),
      ref,
      force: o.force === true,
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
    });
    process.exit(code);
  });
entity({
  name: 'key',
  path: 'keys',
  filters: ['tenant', 'name'],
  create: (c) =>
    c
      .argument('<name>')
      .option('--tenant <tenant>', 'owner (implied by a tenant token)')
      .requiredOption('--public-key <key|@file>', 'an OpenSSH public key, or @ and the file it is in (~/.ssh/id_ed25519.pub)'),
  body: ([name], o) => ({ name, tenant: o.tenant, publicKey: readArgFile(o.publicKey as string) }),
});
/** `@path` reads the file (a public key's .pub); anything else is the value itself. */
function readArgFile(v: string): string {
  if (!v.startsWith('@')) return v;
  try {
    return readFileSync(v.slice(1), 'utf8').trim();
  } catch (e) {
    throw new InvalidArgumentError(`cannot read ${v.slice(1)}: ${(e as Error).message}`);
  }
}
const tokenCmd = entity({ name: 'token', path: 'tokens', filters: ['role', 'tenant', 'host'], choices: { role: ROLES } });
tokenCmd
  .command('create')
  .description('create an API token; prints the secret once')
  .addOption(new Option('--role <role>').choices(ROLES).makeOptionMandatory())
  .option('--name <name>', 'a label for the token')
  .option('--tenant <tenant>', 'the tenant (role tenant)')
  .option('--host <host>', 'the host (role agent)')
  .option('--expires-in <duration>', 'it stops working after this long: 90m, 12h, 30d (default: never)')
  .option('--expires-at <time>', 'it stops working at this ISO 8601 time, e.g. 2027-01-31T00:00:00Z')
  .option('--output-file <file>', 'write the secret to this new file (mode 0600) instead of printing it')
  .option('--db <url>', 'write to this store directly instead of calling the API (bootstrap)')
  .action(
    async (o: { role: Role; name?: string; tenant?: string; host?: string; db?: string; expiresIn?: string; expiresAt?: string; outputFile?: string }) => {
      if (o.expiresIn !== undefined && o.expiresAt !== undefined)
        throw new WeftError('E_INVALID_ARG', 'invalid --expires-in with --expires-at: give one of them', '--expires-in');
      const expiresAt = o.expiresIn !== undefined ? new Date(Date.now() + durationMs('--expires-in', o.expiresIn)).toISOString() : o.expiresAt;
      const input = { name: o.name ?? `${o.role}-${Date.now().toString(36)}`, role: o.role, ...defined({ tenant: o.tenant, host: o.host, expiresAt }) };
      let r: { token: unknown; secret: string };
      if (o.db) {
        const [{ openStore }, { createCtx }, { createToken }] = await Promise.all([
          import('../store/open.js'),
          import('../core/context.js'),
          import('../core/tokens.js'),
        ]);
        const store = await openStore(o.db);
        try {
          r = await createToken(createCtx(store), input);
        } finally {
          await store.close();
        }
      } else {
        r = await client().post('/v1/tokens', input);
      }
      if (o.outputFile !== undefined) {
        writeSecretFile('--output-file', o.outputFile, r.secret);
        const t = r.token as { id: string; name: string };
        if (asData()) printData({ token: r.token, secretFile: o.outputFile });
        else process.stdout.write(`token ${t.name} (${t.id}): secret written to ${o.outputFile}\n`);
      } else if (asData()) printData(r);
      else process.stdout.write(`${r.secret}\n`);
    },
  );

/** A change-log item as GET /v1/changes answers it (the payload's own fields besides). */
interface ChangeItem {
  version: number;
  at: string;
  kind: string;
  actor: { tokenId: string; name: string } | null;
  object: { kind: string; id: string; name: string | null };
}
type ChangePage = { items: ChangeItem[]; head: number };

/** The table's cells: the object by its name (its id when it has none), the actor by its token's name. */
const changeCells = (c: ChangeItem) => ({ ...c, object: c.object.name ?? c.object.id, actor: c.actor?.name ?? null });

/** How often `changes --follow` asks for new changes while the API answers. */
const FOLLOW_POLL_MS = 500;

/**
 * `changes --follow`: the newest page (or everything after --after), then
 * every change as it commits, polled; JSON lines with -o json, otherwise
 * one aligned line each under one header. Ctrl-C ends it. Losing the API
 * (a restart, a replica going away) is said once on stderr and retried on
 * the agents' jittered backoff; a refusal (revoked token) ends it.
 */
async function followChanges(o: { after?: number; limit: number }): Promise<never> {
  const api = client();
  const { output: f, headers } = globals();
  const widths = [7, 24, 15, 26];
  const line = (cells: string[]) => `${cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i] as number) : c)).join('  ')}\n`;
  // One change per line (JSON lines, or YAML documents), so a script reads each as it commits.
  const show = (c: ChangeItem) => {
    if (f === 'json') return `${JSON.stringify(c)}\n`;
    if (f === 'yaml') return `---\n${render('', c, { format: 'yaml' })}`;
    if (f === 'name') return `change/${c.version}\n`;
    const r = changeCells(c);
    return line([String(r.version), r.at, r.kind, r.object, r.actor ?? '-']);
  };
  const print = (items: ChangeItem[]) => {
    for (const c of items) process.stdout.write(show(c));
  };
  if ((f === 'table' || f === 'wide') && headers) process.stdout.write(line(['VERSION', 'AT', 'KIND', 'OBJECT', 'ACTOR']));
  let last: number;
  if (o.after === undefined) {
    // Oldest of the page first, as tail -f shows a file's end, so what commits next reads on below it.
    const page = await api.get<ChangePage>(`/v1/changes?order=desc&limit=${o.limit}`);
    print([...page.items].reverse());
    last = page.items[0]?.version ?? 0;
  } else last = o.after;
  let attempt = 0;
  for (;;) {
    let page: ChangePage;
    try {
      page = await api.get<ChangePage>(`/v1/changes?after=${last}&limit=1000`);
    } catch (e) {
      // Down, shutting down or over its connection cap: it comes back. Anything else (a revoked token) ends the follow.
      if (!(e instanceof WeftError && (e.code === 'E_UNAVAILABLE' || e.code === 'E_BUSY'))) throw e;
      if (attempt === 0) process.stderr.write(`weft changes: lost the API (${e.message}); retrying with backoff\n`);
      await new Promise((r) => setTimeout(r, reconnectDelay(attempt++)));
      continue;
    }
    if (attempt > 0) process.stderr.write(`weft changes: the API answers again after ${attempt} retries; following from version ${last}\n`);
    attempt = 0;
    print(page.items);
    last = page.items.at(-1)?.version ?? last;
    // A full page: more are waiting, ask again at once.
    if (page.items.length < 1000) await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
  }
}

program
  .command('backup')
  .description('an online backup of a SQLite store, while the server runs (PostgreSQL: pg_dump, see docs/operations.md)')
  .requiredOption('--db <url>', 'the store: sqlite:PATH')
  .requiredOption('--to <file>', 'the new file to write (mode 0600; never overwritten)')
  .action(async (o: { db: string; to: string }) => {
    if (/^postgres(ql)?:\/\//.test(o.db))
      throw new WeftError('E_INVALID_ARG', 'invalid --db: weft backup copies SQLite stores; back up PostgreSQL with pg_dump (docs/operations.md)', '--db');
    const path = o.db.startsWith('sqlite:') ? o.db.slice('sqlite:'.length) : o.db;
    if (path === '' || /^[a-z]+:\/\//.test(o.db)) throw new WeftError('E_INVALID_ARG', `invalid --db ${JSON.stringify(o.db)}: must be sqlite:PATH`, '--db');
    const { backupSqlite } = await import('../store/sqlite/backup.js');
    const r = await backupSqlite(path, o.to);
    if (asData()) printData({ db: `sqlite:${path}`, to: o.to, ...r });
    else process.stdout.write(`backed up sqlite:${path} (change-log version ${r.version}, ${r.bytes} bytes) to ${o.to}\n`);
  });

program
  .command('changes')
  .description('show the change log: who changed what, newest first')
  .addOption(new Option('--after <version>', 'only changes after this version, oldest first').argParser(intIn('--after', 0, Number.MAX_SAFE_INTEGER)))
  .addOption(new Option('--limit <n>', 'at most this many').argParser(intIn('--limit', 1, 1000)).default(50))
  .option('-f, --follow', 'print the newest --limit changes (oldest of them first), then every change as it commits, until Ctrl-C')
  .action(async (o: { after?: number; limit: number; follow?: boolean }) => {
    if (o.follow) await followChanges(o);
    const qs = o.after === undefined ? `order=desc&limit=${o.limit}` : `after=${o.after}&limit=${o.limit}`;
    const items = (await client().get<ChangePage>(`/v1/changes?${qs}`)).items;
    await out('changes', asData() ? items : items.map(changeCells));
  });

program
  .command('agents')
  .description("agents connected to the server's push stream, with their applied version and lag")
  .action(async () => {
    const r = await client().get<{ head: number; items: unknown[] }>('/v1/agents');
    await out('agents', r.items);
  });

program
  .command('completion')
  .description('print a shell completion script, generated from this CLI: weft completion bash > /etc/bash_completion.d/weft')
  .addArgument(new Argument('<shell>', 'bash or zsh').choices(SHELLS))
  .action((shell: Shell) => {
    process.stdout.write(completionScript(program, shell));
  });

program
  .command('whoami')
  .description('the token this CLI authenticates with: its name, id, role, and tenant or host')
  .action(async () => {
    const t = await client().get<{ id: string; name: string; role: string; tenantId: string | null; hostId: string | null; expiresAt: string | null }>(
      '/v1/whoami',
    );
    if (asData()) return void printData(t);
    const scope = t.tenantId ? `, tenant ${t.tenantId}` : t.hostId ? `, host ${t.hostId}` : '';
    process.stdout.write(`token ${t.name} (${t.id}), role ${t.role}${scope}${t.expiresAt ? `, expires ${t.expiresAt}` : ''}\n`);
  });

program
  .command('seed')
  .description('create a small example cloud (2 sites, racks, hosts, 2 tenants, networks, instances, a VIP); skips what exists')
  .action(async () => {
    await seedExample(client(), (line) => process.stderr.write(`${line}\n`));
  });

// --- lab -------------------------------------------------------------------
const lab = program.command('lab').description('a whole cloud in network namespaces on this machine (root): server, agents, BIRD, tenants, a VIP');
const labSize = (c: Command) =>
  c
    .option('--name <name>', 'lab name (1..6 of [a-z0-9])', 'weft')
    .option('--sites <n>', 'sites (API sites, a BIRD spine each, joined by a WAN router)', int('sites'), DEFAULT_CLOUD.sites)
    .option('--racks-per-site <n>', 'racks per site (a BIRD ToR each)', int('racks-per-site'), DEFAULT_CLOUD.racksPerSite)
    .option('--hosts-per-rack <n>', 'hypervisors per rack', int('hosts-per-rack'), DEFAULT_CLOUD.hostsPerRack)
    .option('--tenants <n>', 'tenants, each with the same private subnets, spanning every site', int('tenants'), DEFAULT_CLOUD.tenants)
    .option('--instances <n>', "instances on the tenants' private networks, placed by the server", int('instances'), DEFAULT_CLOUD.instances)
    .option(
      '--seed <s>',
      'seeds the order instances are created in and the racks of the VIP backends: the same seed builds the same lab',
      int('seed'),
      DEFAULT_CLOUD.seed,
    );
const sizeOf = (o: { name: string; sites: number; racksPerSite: number; hostsPerRack: number; tenants: number; instances: number; seed: number }) => ({
  name: o.name,
  sites: o.sites,
  racksPerSite: o.racksPerSite,
  hostsPerRack: o.hostsPerRack,
  tenants: o.tenants,
  instances: o.instances,
  seed: o.seed,
});
const LAB_DB = 'the store: sqlite (a file of the lab) or sqlite:PATH, one server; or an empty PostgreSQL database postgres://..., two server replicas';
const BOOT_VM =
  "also boot instance t1guest as a real VM: qemu (TCG) on its hypervisor, from the profile its agent wrote, with Debian's kernel and a busybox initramfs; `weft console t1guest` reaches its serial console";
labSize(lab.command('up').description('build the lab and wait until it is ready (progress on stderr)'))
  .option('--db <url>', LAB_DB, 'sqlite')
  .option('--boot-vm', BOOT_VM)
  .action(async (o) => {
    const { labUp } = await import('../lab/daemon.js');
    const t0 = Date.now();
    process.stderr.write(`weft lab ${o.name}: building\n`);
    const s = await labUp({ ...sizeOf(o), db: o.db, bootVm: o.bootVm === true }, (line) => process.stderr.write(`${line}\n`));
    process.stderr.write(
      `weft lab ${o.name}: up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${s.hosts.length} hosts, ${s.instances.length} instances, VIP ${s.vip}\n`,
    );
    // stdout stays one line a shell can eval; the console's URL goes beside the progress.
    process.stderr.write(`weft lab ${o.name}: console: ${s.api}/ui/ (log in with the token in ${s.tokenFile})\n`);
    process.stdout.write(`export WEFT_API=${s.api} WEFT_TOKEN_FILE=${s.tokenFile}\n`);
    if (s.guest) process.stderr.write(`${s.guest.name} runs under qemu on ${s.guest.host}: bin/weft console ${s.guest.name} (Ctrl-] detaches)\n`);
    process.stderr.write('then: bin/weft host list; bin/weft lab check; bin/weft lab down\n');
  });
labSize(lab.command('daemon', { hidden: true }).description('the process that owns a lab (started by up)'))
  .option('--db <url>', LAB_DB, 'sqlite')
  .option('--boot-vm', BOOT_VM)
  .action(async (o) => {
    const { runDaemon } = await import('../lab/daemon.js');
    await runDaemon({ ...sizeOf(o), db: o.db, bootVm: o.bootVm === true });
  });
lab
  .command('check')
  .description('reachability matrix, tenant isolation, no ARP/NDP on the underlay, the VIP from outside, agents and BGP; exit 0 only if all hold')
  .option('--name <name>', 'lab name', 'weft')
  .action(async (o: { name: string }) => {
    const { labCheck } = await import('../lab/daemon.js');
    const r = await labCheck(o.name);
    if (asData()) printData(r.items);
    else for (const i of r.items) process.stdout.write(`${i.ok ? 'ok  ' : 'FAIL'}  ${i.check}: ${i.detail}\n`);
    process.stdout.write(r.ok ? 'all checks passed\n' : 'some checks failed\n');
    if (!r.ok) process.exitCode = 1;
  });
lab
  .command('status')
  .description("the lab's hosts, instances, VIP and API")
  .option('--name <name>', 'lab name', 'weft')
  .action(async (o: { name: string }) => {
    const { labStatus } = await import('../lab/daemon.js');
    const s = await labStatus(o.name);
    if (asData()) return void printData(s);
    process.stdout.write(`lab ${s.name}: ${s.status}, daemon pid ${s.daemon.pid}, API ${s.api} (token in ${s.tokenFile})\n`);
    for (const st of s.stages) process.stdout.write(`  [${(st.at / 1000).toFixed(1)} s] ${st.stage}\n`);
    const sh = s.shape;
    if (sh)
      process.stdout.write(
        `${sh.sites} sites x ${sh.racksPerSite} racks x ${sh.hostsPerRack} hosts, ${sh.tenants} tenants, ${sh.instances} instances, seed ${sh.seed}\n`,
      );
    for (const x of s.sites ?? []) process.stdout.write(`site ${x.name}: spine ${x.spine}, underlay ${x.underlayPool}, public ${x.public4} ${x.public6}\n`);
    process.stdout.write(`VIP ${s.vip}\nhosts:\n`);
    for (const h of s.hosts)
      process.stdout.write(
        `  ${h.name.padEnd(8)} site ${(h.site ?? '-').padEnd(3)} rack ${h.rack.padEnd(5)} underlay ${h.underlayIp.padEnd(15)} netns ${h.ns}\n`,
      );
    process.stdout.write('instances:\n');
    for (const i of s.instances) process.stdout.write(`  ${i.name.padEnd(8)} on ${i.host.padEnd(7)} ${i.ipv4 ?? '-'} ${i.ipv6 ?? '-'}\n`);
    if (s.guest)
      process.stdout.write(
        `booted VM (qemu):\n  ${s.guest.name.padEnd(8)} on ${s.guest.host.padEnd(7)} ${s.guest.ipv4 ?? '-'} ${s.guest.ipv6 ?? '-'}  console socket ${s.guest.consoleSocket} (\`weft console ${s.guest.name}\`)\n`,
      );
    if (s.servers) {
      process.stdout.write(`servers (store ${s.db}):\n`);
      for (const x of s.servers) process.stdout.write(`  server ${x.n}  ${x.up ? `up, pid ${x.pid}` : 'FAILED'}  API ${x.api}  SVP and stream on ${x.mgmt}\n`);
    }
    if (s.agents) {
      process.stdout.write('agents:\n');
      for (const a of s.agents)
        process.stdout.write(
          `  ${a.host.padEnd(8)} ${a.connected ? `connected to server ${a.server ?? '?'}` : 'not connected'}, version ${a.version ?? '-'}\n`,
        );
    }
    process.stdout.write(`faults: ${(s.faults ?? []).join(', ') || 'none'}\n`);
  });
lab
  .command('move <instance>')
  .description('live-migrate an instance of the lab with a ping every 10 ms running to it; report the hosts, the pings lost and the blackout')
  .option('--to <host>', 'the target host (default: the server places it)')
  .option('--name <name>', 'lab name', 'weft')
  .action(async (instance: string, o: { to?: string; name: string }) => {
    const { describeMove, labMove } = await import('../lab/daemon.js');
    const r = await labMove(o.name, instance, o.to);
    labReport(r, describeMove);
  });
/** A lab operation's report: as JSON with `-o json`, else its lines; exit 1 unless it completed. */
function labReport<R extends { ok: boolean }>(r: R, describe: (r: R) => string[]): void {
  if (asData()) printData(r);
  else process.stdout.write(`${describe(r).join('\n')}\n`);
  if (!r.ok) process.exitCode = 1;
}

// The kinds and their help come from the lab's table of faults (src/lab/faults): a kind added there is offered here.
const faultKinds = new Argument('<what>', FAULT_HELP).choices(FAULT_KINDS).argParser((v: string) => {
  if (!isFaultKind(v)) throw new InvalidArgumentError(FAULT_KIND_RULE);
  return v;
});
lab
  .command('fail')
  .description(
    "inject a fault and time the reaction: `fail host HOST`, `fail backend web1`, `fail link HOST [--silent]` (at the ToR); `fail server [N]` (agents' reconnection, forwarding)",
  )
  .addArgument(faultKinds)
  .argument('[target]', 'a host, a backend (web1, web2), or a server replica (1, 2; default 1)')
  .option('--silent', 'link: drop every packet on it but keep the carrier up, so BFD must detect it')
  .option('--name <name>', 'lab name', 'weft')
  .action(async (what: string, target: string | undefined, o: { silent?: boolean; name: string }) => {
    const { describeFault, labFault } = await import('../lab/daemon.js');
    const r = await labFault(o.name, 'fail', what, target ?? '', { silent: o.silent });
    labReport(r, describeFault);
  });
lab
  .command('heal')
  .description('undo a fault of `weft lab fail` and time the recovery (sessions Established, routes and next hops back; for a server: agents back at the head)')
  .addArgument(faultKinds)
  .argument('[target]', 'the host, backend or server replica failed (server: default 1)')
  .option('--name <name>', 'lab name', 'weft')
  .action(async (what: string, target: string | undefined, o: { name: string }) => {
    const { describeFault, labFault } = await import('../lab/daemon.js');
    const r = await labFault(o.name, 'heal', what, target ?? '');
    labReport(r, describeFault);
  });
lab
  .command('evacuate <host>')
  .description(
    "after `weft lab fail host HOST`: run the operator's commands through the API (host down, every instance migrated) and switch each VM over; time until each answers on its new host",
  )
  .option('--name <name>', 'lab name', 'weft')
  .action(async (host: string, o: { name: string }) => {
    const { describeEvacuation, labEvacuate } = await import('../lab/daemon.js');
    const r = await labEvacuate(o.name, host);
    labReport(r, describeEvacuation);
  });
lab
  .command('down')
  .description('remove every namespace, process and file the lab made (also after a crash)')
  .option('--name <name>', 'lab name', 'weft')
  .action(async (o: { name: string }) => {
    const { labDown } = await import('../lab/daemon.js');
    process.stdout.write(`${await labDown(o.name)}\n`);
  });

function parsePortSpec(s: string): Record<string, string> {
  const [network, ...kv] = s.split(',');
  const spec: Record<string, string> = { network: network as string };
  for (const p of kv) {
    const [k, v] = p.split('=', 2);
    if (!k || v === undefined || !['mac', 'ipv4', 'ipv6'].includes(k)) throw new InvalidArgumentError(`--net ${s}: expected NETWORK[,mac=M][,ipv4=A][,ipv6=A]`);
    spec[k] = v;
  }
  return spec;
}

// A usage error prints the error and where help is, never the help itself:
// help shows option values, and one of them may be a secret.
// Every command throws its usage errors (instead of exiting 1) so that they
// exit 2, as the epilogue says.
(function hint(c: Command, path: string) {
  c.showHelpAfterError(`(see ${path} --help)`);
  c.exitOverride();
  for (const sub of c.commands) hint(sub, `${path} ${sub.name()}`);
})(program, 'weft');

/** Exit codes, as `weft --help` lists them: scripts tell "no such object" from "server down". */
export const EXIT = { failure: 1, usage: 2, unreachable: 3, notFound: 4 } as const;

program.addHelpText(
  'after',
  `
Exit codes:
  0  success
  ${EXIT.failure}  failure (the API refused the request, or the command failed)
  ${EXIT.usage}  usage error (unknown command or option, bad option value)
  ${EXIT.unreachable}  the API is unreachable
  ${EXIT.notFound}  not found (the named object does not exist)`,
);

/**
 * An error's message naming the flag the operator typed (`--underlay-ip`)
 * instead of the API's field (`underlayIp`), when `cmd` has one for it.
 */
export function inOperatorTerms(e: WeftError, cmd: Command | undefined): string {
  if (e.field === undefined || cmd === undefined) return e.message;
  const flags = [...cmd.options, ...program.options].map((o) => o.long).filter((f): f is string => f !== undefined);
  const r = flagFor(e.field, flags);
  if (r === undefined) return e.message;
  const shown = describeFlag(r, r.index !== undefined);
  // A filter or reference naming nothing: `tenant "nosuch" not found (--tenant)`.
  if (e.code === 'E_NOT_FOUND') return `${e.message} (${shown})`;
  return inFlagTerms(e.message, e.field, shown);
}

/** The exit code of an error that ended the command. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT.usage;
  if (e instanceof WeftError && e.code === 'E_UNAVAILABLE') return EXIT.unreachable;
  if (e instanceof WeftError && e.code === 'E_NOT_FOUND') return EXIT.notFound;
  return EXIT.failure;
}

// Run only as the executable (bin/weft); a test imports `program` to walk its options.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // `weft ... | head` closes our stdout early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });

  let active: Command | undefined;
  program.hook('preAction', (_c, action) => {
    active = action;
  });
  program.parseAsync(process.argv).catch((e: unknown) => {
    // Commander has already printed its own usage errors, help and version; a
    // usage error an action throws (a bad --net, an unreadable @file) reaches
    // here as it was thrown, and is printed as Commander would.
    if (e instanceof InvalidArgumentError) process.stderr.write(`error: ${e.message}\n`);
    if (e instanceof CommanderError) process.exit(exitCodeOf(e));
    const msg = e instanceof WeftError ? inOperatorTerms(e, active) : e instanceof Error ? e.message : String(e);
    process.stderr.write(`error: ${msg}\n`);
    if (globals().debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exit(exitCodeOf(e));
  });
}
