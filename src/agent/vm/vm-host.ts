// The VmHost seam: the libvirt domains weft keeps on a hypervisor, one per
// local instance, defined from the domain XML of its profile and kept running
// or stopped as the source of truth says. VirshHost (virsh.ts) drives libvirt
// through one long-lived virsh; FakeVmHost (fake.ts) keeps domains in memory.
// One contract suite (test/support/vm-host-contract.ts) runs on both.
import { invalid, WeftError } from '../../model/errors.js';

export { checkMigrationUri } from '../../model/profile.js';

export type DomainState = 'running' | 'stopped';

/**
 * weft's domains on one hypervisor. Every name is `weft-…` (DOMAIN_NAME):
 * weft neither lists nor touches a domain it did not name, so an operator's
 * own VMs on the host are safe from it. Failures of the hypervisor are
 * E_DATAPLANE errors naming the domain and saying why (virsh's words);
 * a bad name or XML is E_INVALID_ARG, refused before the hypervisor sees it.
 * Calls on one domain take effect in call order; calls on different domains
 * may interleave.
 */
export interface VmHost {
  /**
   * Defines domain `name` from `domainXml`, or redefines it. The XML's
   * `<name>` must be `name` (libvirt would define it under the XML's name);
   * a redefinition must carry the domain's `<uuid>` (libvirt refuses
   * another, or none). A running domain keeps running on its old
   * definition and boots the new one at its next start.
   */
  define(name: string, domainXml: string): Promise<void>;
  /** Starts a defined domain; one already running is left as it is. An unknown domain fails. */
  start(name: string): Promise<void>;
  /**
   * Stops a running domain: asks its guest to shut down, and pulls the plug
   * (destroy) when it has not stopped in time. A stopped one is left; an
   * unknown one fails.
   */
  stop(name: string): Promise<void>;
  /**
   * Live-migrates running domain `name` to the hypervisor at libvirt URI
   * `toUri` (its disk on storage both see): defined there, persistent, and
   * undefined here once its guest runs there. On failure (E_DATAPLANE, in
   * libvirt's words) the domain still runs here, as libvirt leaves it; a
   * domain that is not running here fails.
   */
  migrate(name: string, toUri: string): Promise<void>;
  /** Removes a domain's definition, pulling the plug first if it runs (it is being deleted). An unknown domain is fine. */
  undefine(name: string): Promise<void>;
  /** weft's domains (`weft-…` only), with whether each runs (a paused or suspended domain is active: running). */
  list(): Promise<Map<string, DomainState>>;
  /** Ends what the host holds open; a later call opens it again. */
  close(): Promise<void>;
}

/** A weft domain's name: `weft-` and then letters, digits, `.`, `_` and `-` (an instance's is `weft-<instance id>`). */
export const DOMAIN_NAME = /^weft-[A-Za-z0-9][A-Za-z0-9._-]{0,194}$/;

export function isWeftDomain(name: string): boolean {
  return DOMAIN_NAME.test(name);
}

/** Refuses a name that is not a weft domain's. */
export function checkDomainName(name: string): void {
  if (typeof name !== 'string' || !DOMAIN_NAME.test(name)) {
    throw invalid('domain name', name, "weft- and then letters, digits, '.', '_' or '-' (at most 200 characters)");
  }
}

/** Refuses domain XML whose `<name>` is not `name`: libvirt names a domain by its XML alone. */
export function checkDomainXml(name: string, domainXml: string): void {
  checkDomainName(name);
  const inXml = typeof domainXml === 'string' ? domainChild(domainXml, 'name') : null;
  if (inXml === null) throw invalid('domain XML', name, 'a <domain> element with a <name> child');
  if (inXml !== name) throw invalid('domain XML', name, `its <name> must be the domain's name; it is ${JSON.stringify(inXml)}`);
}

/** A domain failure: which domain, and why. */
export function domainError(name: string, why: string, cause?: unknown): WeftError {
  return new WeftError('E_DATAPLANE', `domain ${name}: ${why}`, undefined, cause === undefined ? undefined : { cause });
}

/** Tags, and the markup that is not one (comments, CDATA, declarations, processing instructions). */
const MARKUP = /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<![^>]*>|<\?[\s\S]*?\?>|<(\/?)([A-Za-z_][\w.:-]*)(?:\s(?:[^>"']|"[^"]*"|'[^']*')*)?\/?>/g;

/**
 * The text of the first child `<tag>` of the root `<domain>` element (entities
 * decoded), or null when the XML has no such child or its root is not a
 * `<domain>`. Not a validating parser: libvirt validates; this reads the two
 * fields weft must check first (`name`, `uuid`), ignoring look-alikes in
 * comments or deeper elements (`<cpu><model><name>`, `<metadata>`).
 */
export function domainChild(xml: string, tag: string): string | null {
  let depth = 0;
  let seenRoot = false;
  let from = -1;
  for (const m of xml.matchAll(MARKUP)) {
    const el = m[2];
    if (el === undefined) continue;
    const closing = m[1] === '/';
    const empty = !closing && m[0].endsWith('/>');
    if (closing) {
      depth--;
      if (from !== -1 && depth === 1 && el === tag) return decodeEntities(xml.slice(from, m.index));
      if (depth === 0) return null;
      continue;
    }
    if (depth === 0) {
      if (seenRoot || el !== 'domain') return null;
      seenRoot = true;
    } else if (depth === 1 && el === tag && from === -1) {
      if (empty) return '';
      from = (m.index ?? 0) + m[0].length;
    }
    if (!empty) depth++;
  }
  return null;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]+);/g, (all, e: string) => {
    if (!e.startsWith('#')) return ENTITIES[e] ?? all;
    const cp = e.startsWith('#x') ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : all;
  });
}
