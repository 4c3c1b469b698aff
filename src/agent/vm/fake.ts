// An in-memory VmHost for unit tests: keeps domains as libvirt does (a name
// and a uuid per definition, refused when either is another domain's; a
// running domain keeps running when redefined, and is stopped before it is
// undefined) and fails on demand. It checks the XML's <name> and <uuid>
// only: the rest of the XML is libvirt's to validate.
// test/support/vm-host-contract.ts holds it to what VirshHost does.
import { randomUUID } from 'node:crypto';
import { WeftError } from '../../model/errors.js';
import { checkDomainName, checkDomainXml, checkMigrationUri, type DomainState, domainChild, domainError, isWeftDomain, type VmHost } from './vm-host.js';

export interface FakeDomain {
  /** The XML it was last defined from. */
  xml: string;
  /** Lowercase, dashed. */
  uuid: string;
  state: DomainState;
}

export type FakeVmFailure = 'define' | 'start' | 'stop' | 'undefine' | 'list' | 'migrate';

/** A uuid as libvirt compares them (it accepts them with or without dashes). */
function normalUuid(s: string): string | null {
  const hex = s.trim().replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class FakeVmHost implements VmHost {
  /** Every domain, weft's and (as `others` made them) not. */
  readonly domains = new Map<string, FakeDomain>();
  /** The operations done, in order (`start weft-a`), failed ones too. */
  readonly log: string[] = [];
  private readonly failing = new Map<FakeVmFailure, number>();

  /**
   * `others`: domains that are not weft's, running (an operator's own, or the test driver's `test`).
   * `uri` and `cluster`: the hypervisors live migrations reach, by URI (this one joins it under `uri`).
   */
  constructor(o: { others?: string[]; uri?: string; cluster?: Map<string, FakeVmHost> } = {}) {
    for (const n of o.others ?? []) this.domains.set(n, { xml: '', uuid: randomUUID(), state: 'running' });
    this.cluster = o.cluster ?? new Map();
    if (o.uri) this.cluster.set(o.uri, this);
  }

  private readonly cluster: Map<string, FakeVmHost>;

  /** The next `count` operations of this kind fail (E_DATAPLANE) and change nothing. */
  failNext(kind: FakeVmFailure, count = 1): void {
    this.failing.set(kind, (this.failing.get(kind) ?? 0) + count);
  }

  private op(kind: FakeVmFailure, name: string): void {
    this.log.push(`${kind} ${name}`.trim());
    const n = this.failing.get(kind) ?? 0;
    if (n === 0) return;
    this.failing.set(kind, n - 1);
    throw name ? domainError(name, `${kind}: injected failure`) : new WeftError('E_DATAPLANE', `${kind}: injected failure`);
  }

  async define(name: string, domainXml: string): Promise<void> {
    checkDomainXml(name, domainXml);
    this.op('define', name);
    const given = domainChild(domainXml, 'uuid');
    const uuid = given === null ? randomUUID() : normalUuid(given);
    if (uuid === null) throw domainError(name, `define: invalid uuid ${JSON.stringify(given)}`);
    const had = this.domains.get(name);
    // libvirt's own checks, in its words: a name keeps its uuid, a uuid its name.
    if (had && had.uuid !== uuid) throw domainError(name, `define: operation failed: domain '${name}' already exists with uuid ${had.uuid}`);
    for (const [other, d] of this.domains)
      if (other !== name && d.uuid === uuid) throw domainError(name, `define: operation failed: domain '${other}' is already defined with uuid ${uuid}`);
    this.domains.set(name, { xml: domainXml, uuid, state: had?.state ?? 'stopped' });
  }

  async start(name: string): Promise<void> {
    checkDomainName(name);
    this.op('start', name);
    const d = this.domains.get(name);
    if (!d) throw domainError(name, `start: failed to get domain '${name}'`);
    d.state = 'running';
  }

  async stop(name: string): Promise<void> {
    checkDomainName(name);
    this.op('stop', name);
    const d = this.domains.get(name);
    if (!d) throw domainError(name, `stop: failed to get domain '${name}'`);
    d.state = 'stopped';
  }

  async migrate(name: string, toUri: string): Promise<void> {
    checkDomainName(name);
    checkMigrationUri(toUri);
    this.op('migrate', name);
    const d = this.domains.get(name);
    if (d?.state !== 'running') throw domainError(name, `migrate: the domain is ${d ? 'not running' : 'not defined'} here`);
    const to = this.cluster.get(toUri);
    if (!to || to === this) throw domainError(name, `migrate: unable to connect to server at '${toUri}': Connection refused`);
    if (to.domains.get(name)?.state === 'running') throw domainError(name, `migrate: Requested operation is not valid: domain '${name}' is already active`);
    to.domains.set(name, { ...d, state: 'running' });
    to.log.push(`incoming ${name}`);
    this.domains.delete(name);
  }

  async undefine(name: string): Promise<void> {
    checkDomainName(name);
    this.op('undefine', name);
    this.domains.delete(name);
  }

  async list(): Promise<Map<string, DomainState>> {
    this.op('list', '');
    const out = new Map<string, DomainState>();
    for (const [name, d] of this.domains) if (isWeftDomain(name)) out.set(name, d.state);
    return out;
  }

  async close(): Promise<void> {}
}
