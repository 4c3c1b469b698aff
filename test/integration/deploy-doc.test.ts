// docs/deploy.md, checked mechanically: its marked fenced blocks (```sh weft,
// ```sh openssl, ```xml libvirt, ```conf bird-tor, ```conf frr-tor, ```nft ...,
// ```ini ...env) run or parse with the real tools, the weft blocks run against a
// real server, a server started on the doc's server.env and certificates answers
// over HTTPS and accepts an agent over mutual TLS, every flag of every `weft`
// command the page names exists, and (as root) the ToR's BIRD config peers with
// a host's BIRD on the config the agent renders for it.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';
import type { Command } from 'commander';
import { streamTlsFiles } from '../../src/agent/main.js';
import { protocolName, renderBirdConf } from '../../src/agent/routing/bird-conf.js';
import type { RoutingInputs } from '../../src/agent/routing/inputs.js';
import { program } from '../../src/cli/main.js';
import { type BirdProcess, kernelRoute, startBird, waitEstablished } from '../../src/lab/bird.js';
import { Lab } from '../../src/lab/builder.js';
import { WEFT_BIN } from '../../src/lab/server-process.js';
import { checkIfname } from '../../src/model/ifname.js';
import { encode, MessageReader, type ServerMessage, STREAM_VERSION } from '../../src/stream/protocol.js';

const ROOT = join(import.meta.dirname, '../..');
const DOC = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
/** The server's management address in the doc: its certificate must name it. */
const SERVER_ADDR = '10.0.0.5';

interface Block {
  lang: string;
  tag: string;
  text: string;
}

/** Every fenced block: ```lang tag, then its lines up to the closing fence. */
function blocks(md: string): Block[] {
  const out: Block[] = [];
  for (const m of md.matchAll(/^```(\S*)(?:[ \t]+(\S+))?[ \t]*\n([\s\S]*?)^```[ \t]*$/gm)) out.push({ lang: m[1] ?? '', tag: m[2] ?? '', text: m[3] ?? '' });
  return out;
}
const ALL = blocks(DOC);
const tagged = (lang: string, tag: string): Block[] => ALL.filter((b) => b.lang === lang && b.tag === tag);
const one = (lang: string, tag: string): string => {
  const bs = tagged(lang, tag);
  assert.equal(bs.length, 1, `docs/deploy.md has one \`\`\`${lang} ${tag} block (found ${bs.length})`);
  return (bs[0] as Block).text;
};

interface Run {
  code: number;
  out: string;
  err: string;
}

function run(cmd: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, timeout: 120_000 }, (e, out, err) =>
      resolve({ code: e ? (typeof (e as { code?: unknown }).code === 'number' ? ((e as { code: number }).code as number) : 1) : 0, out, err }),
    );
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

/** Splits a shell line into words (quotes kept together, not expanded); stops at a comment. */
function words(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  let any = false;
  for (const c of line) {
    if (quote) {
      if (c === quote) quote = '';
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      any = true;
    } else if (c === '#' && !any && cur === '') break;
    else if (/\s/.test(c)) {
      if (cur !== '' || any) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (cur !== '' || any) out.push(cur);
  return out;
}

const COMMAND_STARTS = new Set([';', '|', '&&', '||', '(', '--', 'then', 'do', 'sudo', 'exec']);
const ENDS = new Set([';', '|', '&&', '||', '>', '>>', '<', ')', '&']);
const sub = (c: Command, name: string): Command | undefined => c.commands.find((x) => x.name() === name || x.aliases().includes(name));
const optionOf = (c: Command, flag: string) => c.options.find((o) => o.long === flag || o.short === flag);

/**
 * Checks one `weft ...` command line against the program tree: each word
 * before the first argument is a subcommand, each --flag an option of the
 * command reached (or a global one); returns the problems found.
 */
function checkWeft(ws: string[], where: string): string[] {
  const problems: string[] = [];
  let c: Command = program;
  const path: string[] = ['weft'];
  let i = 1;
  let args = false;
  for (; i < ws.length; i++) {
    const w = ws[i] as string;
    if (ENDS.has(w) || w.startsWith('>') || w.startsWith('#')) break;
    if (w.startsWith('-')) {
      const flag = w.includes('=') ? w.slice(0, w.indexOf('=')) : w;
      const o = optionOf(c, flag) ?? optionOf(program, flag);
      if (!o) {
        problems.push(`${where}: ${path.join(' ')} has no option ${flag} (in: ${ws.join(' ')})`);
        continue;
      }
      // An option with a value takes the next word (unless given as --flag=value).
      if ((o.required || o.optional) && !w.includes('=')) i++;
      continue;
    }
    if (args) continue;
    const s = sub(c, w);
    if (s) {
      c = s;
      path.push(s.name());
    } else if (c.commands.length > 0) {
      problems.push(`${where}: ${path.join(' ')} has no command ${w} (in: ${ws.join(' ')})`);
      break;
    } else args = true;
  }
  return problems;
}

/** Every `weft ...` command the page names: the lines of its sh blocks and its inline code spans. */
function weftCommands(): { ws: string[]; where: string }[] {
  const out: { ws: string[]; where: string }[] = [];
  const add = (line: string, where: string) => {
    const ws = words(line);
    for (let i = 0; i < ws.length; i++) {
      // The command, not a user or group of that name (`install -g weft`, `runuser -u weft -- weft ...`).
      if (ws[i] !== 'weft' || !(i === 0 || COMMAND_STARTS.has(ws[i - 1] as string))) continue;
      out.push({ ws: ws.slice(i), where });
      break;
    }
  };
  for (const b of ALL.filter((x) => x.lang === 'sh')) {
    const text = b.text.replace(/\\\n/g, ' ');
    for (const line of text.split('\n')) add(line.replace(/^\s*\(?\s*(umask \d+;\s*)?/, ''), `\`\`\`sh ${b.tag} block`);
  }
  const prose = DOC.replace(/^```[\s\S]*?^```$/gm, '');
  for (const m of prose.matchAll(/`([^`]+)`/g)) {
    const code = (m[1] as string).replace(/\s+/g, ' ');
    if (code.startsWith('weft ')) add(code, 'inline code');
  }
  return out;
}

/** A spawned `weft server`: resolves with its API URL and stream address once it prints its listening line. */
function startWeftServer(env: NodeJS.ProcessEnv, procs: ChildProcess[]): Promise<{ api: string; stream: string }> {
  const proc = spawn(WEFT_BIN, ['server'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(proc);
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`weft server did not start in 60 s: ${err}`)), 60_000);
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (s: string) => {
      err += s;
      const m = /weft server: store \S+, API (\S+), SVP \S+, stream (\S+)\n/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ api: m[1] as string, stream: m[2] as string });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`weft server exited ${code}: ${err}`));
    });
  });
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** A validator must refuse a broken file, or its passing proves nothing. */
async function refuses(cmd: string, args: (file: string) => string[], dir: string, name: string, text: string): Promise<void> {
  const f = join(dir, name);
  writeFileSync(f, text);
  const r = await run(cmd, args(f));
  assert.notEqual(r.code, 0, `${cmd} accepted a broken file: the check would pass anything`);
}

describe('docs/deploy.md', () => {
  let dir: string;
  const procs: ChildProcess[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-deploy-doc-'));
  });
  after(async () => {
    for (const p of procs) await stopProc(p);
    rmSync(dir, { recursive: true, force: true });
  });

  test('has every block the test checks', () => {
    for (const [lang, tag] of [
      ['sh', 'openssl'],
      ['xml', 'libvirt'],
      ['conf', 'bird-tor'],
      ['conf', 'frr-tor'],
      ['nft', 'server'],
      ['nft', 'hypervisor'],
      ['ini', 'server.env'],
      ['ini', 'agent.env'],
    ] as const)
      one(lang, tag);
    assert.ok(tagged('sh', 'weft').length >= 2, 'the weft blocks');
  });

  test('every flag of every weft command it names exists', () => {
    const cmds = weftCommands();
    assert.ok(cmds.length >= 20, `found the page's weft commands (${cmds.length})`);
    const problems = cmds.flatMap((c) => checkWeft(c.ws, c.where));
    assert.deepEqual(problems, []);
    // The checker itself catches a wrong flag and a wrong command.
    assert.equal(checkWeft(words('weft host create hv1 --rak r1'), 't').length, 1);
    assert.equal(checkWeft(words('weft hosts list'), 't').length, 1);
  });

  test('the env blocks name settings the units read, as the shipped files list them', () => {
    const envOf = (name: string) => new Set((sub(program, name) as Command).options.map((o) => o.envVar));
    for (const [tag, cmd, shipped] of [
      ['server.env', 'server', 'packaging/etc/server.env'],
      ['agent.env', 'agent', 'packaging/etc/agent.env'],
    ] as const) {
      const listed = readFileSync(join(ROOT, shipped), 'utf8');
      const vars = envOf(cmd);
      const lines = one('ini', tag)
        .split('\n')
        .filter((l) => l.trim() !== '');
      assert.ok(lines.length >= 2);
      for (const l of lines) {
        const m = /^(WEFT_[A-Z0-9_]+)=(\S+)$/.exec(l);
        assert.ok(m, `${tag}: ${l} is VARIABLE=value, no quotes or spaces`);
        assert.ok(vars.has(m[1]), `${tag}: ${m[1]} is no setting of weft ${cmd}`);
        assert.match(listed, new RegExp(`^#?${m[1]}=`, 'm'), `${shipped} lists ${m[1]}`);
      }
    }
  });

  test('the nftables rules parse (nft -c)', async () => {
    for (const tag of ['server', 'hypervisor']) {
      const f = join(dir, `${tag}.nft`);
      writeFileSync(f, one('nft', tag));
      const r = await run('nft', ['-c', '-f', f]);
      assert.equal(r.code, 0, `nft -c -f (${tag}): ${r.err}`);
      assert.doesNotMatch(one('nft', tag), /^\s*flush ruleset/m, `${tag}: flush ruleset would delete the agent's tables`);
    }
    await refuses(
      'nft',
      (f) => ['-c', '-f', f],
      dir,
      'bad.nft',
      `${one('nft', 'server')}\ntable inet host_firewall { chain input { tcp dport 99999 accept } }\n`,
    );
  });

  test("the ToR's BIRD config parses (bird -p), and its sessions are the hosts' of the weft block", async () => {
    const conf = one('conf', 'bird-tor');
    const f = join(dir, 'tor-bird.conf');
    writeFileSync(f, conf);
    const r = await run('bird', ['-p', '-c', f]);
    assert.equal(r.code, 0, `bird -p: ${r.err}${r.out}`);
    await refuses('bird', (x) => ['-p', '-c', x], dir, 'bad-bird.conf', conf.replace('local as 65001;', 'local as;'));
    const hosts = hostsOfWeftBlock();
    const neighbors = [...conf.matchAll(/neighbor ([0-9.]+) as (\d+);/g)].map((m) => `${m[1]} ${m[2]}`).sort();
    assert.deepEqual(neighbors, hosts.map((h) => `${h.ip} ${h.asn}`).sort());
    const peer = torPeerOfWeftBlock();
    assert.match(conf, new RegExp(`local as ${peer.asn};`));
    assert.match(conf, new RegExp(`router id ${peer.ip.replace(/\./g, '\\.')};`));
    // It accepts what the hosts announce: /32s of the site's public pool, /64s and /128s of its IPv6 block.
    const site = siteOfWeftBlock();
    assert.match(conf, new RegExp(`${site.ipv4Pool.replace(/\./g, '\\.')}\\{32,32\\}`));
    assert.match(conf, new RegExp(`${site.ipv6Block}\\{64,64\\}`));
    assert.match(conf, new RegExp(`${site.ipv6Block}\\{128,128\\}`));
  });

  test("the ToR's FRR config passes vtysh -C, and its sessions are the hosts' of the weft block", async () => {
    const conf = one('conf', 'frr-tor');
    const f = join(dir, 'tor-frr.conf');
    writeFileSync(f, conf);
    const r = await run('vtysh', ['-C', '-f', f]);
    assert.equal(r.code, 0, `vtysh -C: ${r.err}${r.out}`);
    await refuses('vtysh', (x) => ['-C', '-f', x], dir, 'bad-frr.conf', conf.replace('neighbor HV4 activate', 'neighbor HV4 activate-now'));
    const hosts = hostsOfWeftBlock();
    const neighbors = [...conf.matchAll(/^ neighbor ([0-9.]+) remote-as (\d+)$/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
    assert.deepEqual(neighbors, hosts.map((h) => `${h.ip} ${h.asn}`).sort());
    const peer = torPeerOfWeftBlock();
    assert.match(conf, new RegExp(`^router bgp ${peer.asn}$`, 'm'));
  });

  test('the libvirt interface validates in a domain (virt-xml-validate)', async () => {
    const xml = one('xml', 'libvirt');
    const ifname = /<target dev='([^']+)'\/>/.exec(xml)?.[1];
    assert.ok(ifname, 'a <target dev=...>');
    checkIfname('target dev', ifname);
    assert.match(ifname, /^wp[0-9a-f]{12}$/);
    assert.match(xml, /<interface type='ethernet'>/);
    const domain = (devices: string) =>
      `<domain type='kvm'>\n  <name>vm1</name>\n  <memory unit='MiB'>2048</memory>\n  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n${devices}  </devices>\n</domain>\n`;
    const f = join(dir, 'domain.xml');
    writeFileSync(f, domain(xml));
    const r = await run('virt-xml-validate', [f, 'domain']);
    assert.equal(r.code, 0, `virt-xml-validate: ${r.err}${r.out}`);
    await refuses('virt-xml-validate', (x) => [x, 'domain'], dir, 'bad-domain.xml', domain(xml.replace("type='ethernet'", "type='ethernat'")));
  });

  test('the weft blocks run against a real server; a server on the doc’s server.env and certificates serves HTTPS and mutual TLS', async () => {
    // The certificates, made by the doc's openssl commands as they stand.
    const pki = join(dir, 'pki');
    mkdirSync(pki);
    const made = await run('sh', ['-e', '-c', one('sh', 'openssl')], { cwd: pki });
    assert.equal(made.code, 0, `the openssl block: ${made.err}`);
    for (const f of ['ca.crt', 'server.crt', 'server.key', 'hv1.crt', 'hv1.key', 'hv2.crt', 'hv2.key']) assert.ok(existsSync(join(pki, f)), f);
    const verified = await run('openssl', ['verify', '-CAfile', 'ca.crt', 'server.crt', 'hv1.crt', 'hv2.crt'], { cwd: pki });
    assert.equal(verified.code, 0, verified.err + verified.out);

    // The weft blocks, in order, against a server on loopback; the admin token made as the doc makes it (--db).
    const work = join(dir, 'work');
    const bin = join(dir, 'bin');
    mkdirSync(work);
    mkdirSync(bin);
    symlinkSync(WEFT_BIN, join(bin, 'weft'));
    const db = `sqlite:${join(dir, 'weft.db')}`;
    const token = join(dir, 'admin-token');
    const t = await run(WEFT_BIN, ['token', 'create', '--role', 'admin', '--name', 'ops', '--db', db, '--output-file', token]);
    assert.equal(t.code, 0, t.err);
    const base: NodeJS.ProcessEnv = { ...process.env, WEFT_DB: db, WEFT_SVP_LISTEN: 'off', WEFT_LOG_LEVEL: 'warn' };
    delete base.WEFT_API;
    delete base.WEFT_TOKEN;
    delete base.WEFT_CA_FILE;
    const plain = await startWeftServer({ ...base, WEFT_API_LISTEN: '127.0.0.1:0', WEFT_STREAM_LISTEN: 'off' }, procs);
    const cliEnv = { ...base, PATH: `${bin}:${process.env.PATH}`, WEFT_API: plain.api, WEFT_TOKEN_FILE: token };
    for (const [i, b] of tagged('sh', 'weft').entries()) {
      const r = await run('sh', ['-e', '-x', '-c', b.text], { cwd: work, env: cliEnv });
      assert.equal(r.code, 0, `weft block ${i + 1}: ${r.err}\n${r.out}`);
    }
    const ports = await run(WEFT_BIN, ['-o', 'json', 'port', 'list', '--instance', 'vm1'], { env: cliEnv });
    const port = (JSON.parse(ports.out) as { interface: string; mac: string }[])[0];
    assert.ok(port, 'vm1 has its port');
    assert.match(port.interface, /^wp[0-9a-f]{12}$/, 'the port list shows the interface the libvirt snippet names');
    await stopProc(procs.pop() as ChildProcess);

    // The same store, the doc's server.env: its files where the doc's install commands put them, loopback listeners.
    const etc = join(dir, 'etc');
    mkdirSync(etc);
    for (const [from, to] of [
      ['server.crt', 'server.crt'],
      ['server.key', 'server.key'],
      ['ca.crt', 'agents-ca.crt'],
    ]) {
      copyFileSync(join(pki, from as string), join(etc, to as string));
    }
    const serverEnv: NodeJS.ProcessEnv = { ...base };
    for (const l of one('ini', 'server.env').split('\n')) {
      const m = /^(WEFT_[A-Z0-9_]+)=(\S+)$/.exec(l);
      if (!m) continue;
      serverEnv[m[1] as string] = (m[2] as string)
        .replace(/^\/etc\/weft\//, `${etc}/`)
        .replace(new RegExp(`^${SERVER_ADDR.replace(/\./g, '\\.')}:\\d+$`), '127.0.0.1:0');
    }
    serverEnv.WEFT_SVP_LISTEN = 'off';
    const tls = await startWeftServer(serverEnv, procs);
    assert.match(tls.api, /^https:\/\/127\.0\.0\.1:\d+$/);

    // HTTPS: the doc's CA vouches for the certificate, which names the server's address.
    const ca = readFileSync(join(pki, 'ca.crt'));
    const health = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsGet(`${tls.api}/healthz`, { ca, checkServerIdentity: (_host, cert) => checkServerIdentity(SERVER_ADDR, cert) }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    assert.equal(health.status, 200, health.body);

    // Mutual TLS: hv1's agent, with the files as the agent reads them and the token the weft block wrote, is
    // welcomed; hv2's certificate does not pass for hv1, whatever the token. (A raw client: the agent's checks the
    // address it dials against the certificate, and the doc's names 10.0.0.5, not this loopback.)
    const [, streamPortText] = /:(\d+)$/.exec(tls.stream) ?? [];
    const streamPort = Number(streamPortText);
    const hv1Token = readFileSync(join(work, 'hv1-agent-token'), 'utf8').trim();
    const hello = (host: string): Promise<ServerMessage | null> => {
      const files = streamTlsFiles({ ca: join(pki, 'ca.crt'), cert: join(pki, `${host}.crt`), key: join(pki, `${host}.key`) });
      assert.ok(files?.cert && files.key);
      const sock = tlsConnect({
        host: '127.0.0.1',
        port: streamPort,
        ca: files.ca,
        cert: files.cert,
        key: files.key,
        checkServerIdentity: (_h, cert) => checkServerIdentity(SERVER_ADDR, cert),
      });
      const reader = new MessageReader();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error('no answer in 10 s'));
        }, 10_000);
        sock.on('secureConnect', () => sock.write(encode({ t: 'hello', v: STREAM_VERSION, host: 'hv1', token: hv1Token, version: 0, vnis: [] })));
        sock.on('data', (d: Buffer) => {
          const [first] = reader.push(d) as ServerMessage[];
          if (!first) return;
          clearTimeout(timer);
          sock.destroy();
          resolve(first);
        });
        sock.on('error', (e) => {
          clearTimeout(timer);
          sock.destroy();
          reject(e);
        });
        sock.on('close', () => {
          clearTimeout(timer);
          resolve(null);
        });
      });
    };
    assert.equal((await hello('hv1'))?.t, 'welcome');
    const refused = await hello('hv2');
    assert.equal((refused as { code?: string } | null)?.code, 'E_FORBIDDEN');
  });
});

/** What a ToR test needs: the page's hv1 and tor1 as network namespaces, hv1's BIRD on the config its agent renders. */
interface RackLab {
  lab: Lab;
  host: { ip: string; asn: string };
  tor: { ip: string; asn: string };
  inputs: RoutingInputs;
  hvBird: BirdProcess;
}

/**
 * tor1 and hv1 joined by a link with the page's underlay addresses, a routed
 * port's interface on hv1, and hv1's BIRD started on the config the agent
 * renders for the weft block's rack peers: a /32 and a /128 routed address, a
 * VIP of each family, its /64, and a /32 outside the site's pools (which the
 * ToR must refuse). The caller starts the ToR and destroys the lab.
 */
async function rackLab(name: string): Promise<RackLab> {
  const lab = await Lab.create({ name });
  try {
    const [host] = hostsOfWeftBlock();
    assert.ok(host);
    const tor = torPeerOfWeftBlock();
    const site = siteOfWeftBlock();
    assert.equal(host.ip, '10.1.1.11', 'the table at the top of the page: hv1 on 10.1.1.11');
    await lab.addRouter('tor1');
    await lab.addRouter('hv1');
    await lab.link('tor1', 'hv1', {
      ifA: 'hv1',
      ifB: 'ul0',
      addrA: [`${tor.ip}/24`, '2001:db8:ff:1::1/64'],
      addrB: [`${host.ip}/24`, '2001:db8:ff:1::11/64'],
      mtu: 9000,
    });
    const ifname = 'wp0123456789ab';
    // A routed port's interface, up with carrier: a veth pair (its far end stands for the VM).
    await lab.exec('hv1', 'ip', ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', 'vm0']);
    await lab.exec('hv1', 'ip', ['link', 'set', 'vm0', 'up']);
    await lab.exec('hv1', 'ip', ['link', 'set', ifname, 'up']);
    // The rack peers as the API hands them to the agent (ids are UUIDs).
    const peer = (neighbor: string) => ({
      id: crypto.randomUUID(),
      neighbor,
      remoteAsn: Number(tor.asn),
      importPolicy: 'default' as const,
      maxPrefix: 1000,
      maxPrefixAction: 'restart' as const,
      bfd: true,
      multiprotocol: false,
    });
    const inputs: RoutingInputs = {
      hostName: 'hv1',
      routerId: host.ip,
      asn: Number(host.asn),
      drain: false,
      hostPrefix6: `${site.ipv6Block.replace(/::\/48$/, '')}::/64`,
      routedAddrs: [
        { prefix: '203.0.113.10/32', ifname },
        { prefix: '2001:db8:100::a/128', ifname },
        { prefix: '198.51.100.7/32', ifname },
      ],
      vips: ['203.0.113.80/32', '2001:db8:100::80/128'],
      sessions: [peer(tor.ip), peer('2001:db8:ff:1::1')],
      rpki: null,
      roas: [],
      irr: {},
      bfd: { intervalMs: 100, multiplier: 3 },
    };
    const hvBird = await startBird(lab, 'hv1', renderBirdConf(inputs));
    return { lab, host, tor, inputs, hvBird };
  } catch (e) {
    await lab.destroy();
    throw e;
  }
}

/** Polls `f` every 200 ms until it returns a value `ok` accepts or `ms` pass; returns the last value. */
async function poll<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The host's side of the checks, whatever the ToR runs: its sessions up, the ToR's default route in its kernel. */
async function hostSideHolds(r: RackLab): Promise<void> {
  await waitEstablished(
    r.hvBird,
    r.inputs.sessions.map((x) => protocolName(x.id)),
    60_000,
  );
  const hops = await poll(
    () => kernelRoute(r.lab, 'hv1', '0.0.0.0/0'),
    (h) => h.length > 0,
  );
  assert.deepEqual(hops, [{ via: r.tor.ip, dev: 'ul0' }], "the ToR's default route in hv1's kernel");
}

const HOST_ROUTES4 = ['203.0.113.10/32', '203.0.113.80/32'];
const HOST_ROUTES6 = ['2001:db8:100::/64', '2001:db8:100::80/128', '2001:db8:100::a/128'];

describe("docs/deploy.md: the ToR's configs against a host's BIRD, on the kernel", {
  skip: process.getuid?.() === 0 ? false : 'needs root (network namespaces)',
}, () => {
  test('BIRD: sessions and BFD come up; the ToR takes what the host announces from the pools, nothing else, and honours its drain', async () => {
    const r = await rackLab('wdocb');
    try {
      // The ToR has a default route of its own, as the page says it must (here a blackhole).
      const torConf = `${one('conf', 'bird-tor')}\nprotocol static { ipv4; route 0.0.0.0/0 blackhole; }\nprotocol static { ipv6; route ::/0 blackhole; }\n`;
      const torBird = await startBird(r.lab, 'tor1', torConf);
      await waitEstablished(torBird, ['hv1_v4', 'hv1_v6'], 60_000);
      await hostSideHolds(r);
      const routesFrom = (proto: string, n: number) =>
        poll(
          async () => [...(await torBird.birdc(['show', 'route', 'protocol', proto])).matchAll(/^([0-9a-f.:]+\/\d+)/gm)].map((m) => m[1] as string).sort(),
          (got) => got.length >= n,
        );
      assert.deepEqual(await routesFrom('hv1_v4', 2), HOST_ROUTES4);
      assert.deepEqual(await routesFrom('hv1_v6', 3), HOST_ROUTES6);
      const bfd = await torBird.birdc(['show', 'bfd', 'sessions']);
      assert.match(bfd, new RegExp(`${r.host.ip.replace(/\./g, '\\.')}\\s+\\S+\\s+Up`), bfd);
      // Draining: the host tags its routes GRACEFUL_SHUTDOWN and the ToR keeps them at local preference 0 (100 before).
      assert.match(await torBird.birdc(['show', 'route', 'all', '203.0.113.10/32']), /BGP\.local_pref: 100\b/);
      await r.hvBird.reconfigure(renderBirdConf({ ...r.inputs, drain: true }));
      const all = await poll(
        () => torBird.birdc(['show', 'route', 'all', '203.0.113.10/32']),
        (out) => /BGP\.local_pref: 0\b/.test(out),
      );
      assert.match(all, /BGP\.local_pref: 0\b/, all);
    } finally {
      await r.lab.destroy();
    }
  });

  test('FRR: sessions and BFD come up; the ToR takes what the host announces from the pools, nothing else, and honours its drain', async () => {
    const r = await rackLab('wdocf');
    try {
      // zebra, bgpd and bfdd in tor1's namespace, their sockets in a directory of their own (owned by frr, whom they run as).
      const dir = r.lab.file(mkdtempSync(join(tmpdir(), 'weft-deploy-frr-')));
      const ch = await run('chown', ['frr:frr', dir]);
      assert.equal(ch.code, 0, `chown frr:frr (is frr installed?): ${ch.err}`);
      const daemon = (name: string, extra: string[] = []) =>
        r.lab.spawn(
          'tor1',
          `/usr/lib/frr/${name}`,
          ['-f', '/dev/null', '-z', join(dir, 'zserv.api'), '--vty_socket', dir, '-i', join(dir, `${name}.pid`), ...extra],
          {
            stdio: 'ignore',
          },
        );
      daemon('zebra');
      await poll(
        async () => existsSync(join(dir, 'zserv.api')),
        (x) => x,
        10_000,
      );
      daemon('bgpd');
      daemon('bfdd', ['--bfdctl', join(dir, 'bfdd.sock')]);
      await poll(
        async () => ['zebra', 'bgpd', 'bfdd'].every((d) => existsSync(join(dir, `${d}.vty`))),
        (x) => x,
        10_000,
      );
      const vtysh = async (cmd: string) => {
        const out = await run('vtysh', ['--vty_socket', dir, '-c', cmd]);
        assert.equal(out.code, 0, `vtysh -c ${cmd}: ${out.err}${out.out}`);
        return out.out;
      };
      // The page's config, loaded as vtysh loads frr.conf; and a default route of the ToR's own in BGP, as the page says it must have.
      const conf = join(dir, 'frr.conf');
      writeFileSync(
        conf,
        `${one('conf', 'frr-tor')}router bgp ${r.tor.asn}\n no bgp network import-check\n address-family ipv4 unicast\n  network 0.0.0.0/0\n exit-address-family\n address-family ipv6 unicast\n  network ::/0\n exit-address-family\nexit\n`,
      );
      const loaded = await run('vtysh', ['--vty_socket', dir, '-f', conf]);
      assert.equal(loaded.code, 0, `vtysh -f: ${loaded.err}${loaded.out}`);
      const established = (family: 'ipv4' | 'ipv6', neighbor: string) =>
        poll(
          async () =>
            (JSON.parse(await vtysh(`show bgp ${family} unicast summary json`)) as { peers?: Record<string, { state?: string }> }).peers?.[neighbor]?.state,
          (s) => s === 'Established',
          60_000,
        );
      assert.equal(await established('ipv4', r.host.ip), 'Established');
      assert.equal(await established('ipv6', '2001:db8:ff:1::11'), 'Established');
      await hostSideHolds(r);
      const routesFrom = (family: 'ipv4' | 'ipv6', neighbor: string, n: number) =>
        poll(
          async () =>
            Object.keys(
              (JSON.parse(await vtysh(`show bgp ${family} unicast neighbors ${neighbor} routes json`)) as { routes?: Record<string, unknown> }).routes ?? {},
            ).sort(),
          (got) => got.length >= n,
        );
      assert.deepEqual(await routesFrom('ipv4', r.host.ip, 2), HOST_ROUTES4);
      assert.deepEqual(await routesFrom('ipv6', '2001:db8:ff:1::11', 3), HOST_ROUTES6);
      const bfd = await poll(
        async () => JSON.parse(await vtysh('show bfd peers json')) as { peer: string; status: string }[],
        (ps) => ps.some((p) => p.peer === r.host.ip && p.status === 'up'),
      );
      assert.ok(
        bfd.some((p) => p.peer === r.host.ip && p.status === 'up'),
        JSON.stringify(bfd),
      );
      // Draining: local preference 0 at the ToR (from the default, 100, before).
      const locPrf = async () =>
        (JSON.parse(await vtysh('show bgp ipv4 unicast 203.0.113.10/32 json')) as { paths?: { locPrf?: number }[] }).paths?.[0]?.locPrf;
      // (FRR's JSON leaves the default out of an eBGP path.)
      const before = await locPrf();
      assert.ok(before === undefined || before === 100, `an active host at the default preference: ${before}`);
      await r.hvBird.reconfigure(renderBirdConf({ ...r.inputs, drain: true }));
      const pref = await poll(locPrf, (p) => p === 0);
      assert.equal(pref, 0, 'a draining host is least preferred');
    } finally {
      await r.lab.destroy();
    }
  });
});

/** The hosts the weft block creates: their underlay address and ASN. */
function hostsOfWeftBlock(): { ip: string; asn: string }[] {
  const text = tagged('sh', 'weft')
    .map((b) => b.text)
    .join('\n');
  const hosts = [...text.matchAll(/^weft host create \S+ .*--underlay-ip (\S+) .*--asn (\d+)/gm)].map((m) => ({ ip: m[1] as string, asn: m[2] as string }));
  assert.ok(hosts.length >= 2, 'the weft block creates the hosts');
  return hosts;
}

/** The rack's IPv4 peer the weft block creates: the ToR. */
function torPeerOfWeftBlock(): { ip: string; asn: string } {
  const text = tagged('sh', 'weft')
    .map((b) => b.text)
    .join('\n');
  const m = /^weft peer create --rack \S+ --neighbor ([0-9.]+) --remote-asn (\d+)/m.exec(text);
  assert.ok(m, 'the weft block creates the rack peer');
  return { ip: m[1] as string, asn: m[2] as string };
}

function siteOfWeftBlock(): { ipv4Pool: string; ipv6Block: string } {
  const text = tagged('sh', 'weft')
    .map((b) => b.text)
    .join('\n');
  const m = /^weft site create \S+ .*--ipv4-pool (\S+) .*--ipv6-block (\S+)/m.exec(text);
  assert.ok(m, 'the weft block creates the site');
  return { ipv4Pool: m[1] as string, ipv6Block: m[2] as string };
}
