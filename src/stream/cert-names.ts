// The host names a client certificate vouches for: its subject CN and its
// subjectAltName DNS entries. Mutual TLS on the push stream binds a session
// to the host its HELLO names through them.

/** The parts of a peer certificate (node:tls `PeerCertificate`) the binding reads. */
export interface CertIdentity {
  subject?: { CN?: string | string[] } | null;
  /** node's rendering: `DNS:hv1, IP Address:192.0.2.1`. */
  subjectaltname?: string | undefined;
}

/** The CN(s) and DNS SANs of `cert`, lower-cased (host names compare case-insensitively), without duplicates. */
export function certHostNames(cert: CertIdentity): string[] {
  const cn = cert.subject?.CN;
  const names = typeof cn === 'string' ? [cn] : Array.isArray(cn) ? [...cn] : [];
  for (const entry of splitSan(cert.subjectaltname ?? '')) if (entry.startsWith('DNS:')) names.push(entry.slice(4));
  return [...new Set(names.map((n) => n.toLowerCase()).filter((n) => n !== ''))];
}

/** Whether `cert` names host `name` (its CN or one of its DNS SANs, exactly; no wildcards: one certificate per host). */
export function certNamesHost(cert: CertIdentity, name: string): boolean {
  return certHostNames(cert).includes(name.toLowerCase());
}

/** `DNS:a, DNS:"b, c"` -> entries; node quotes an entry holding a comma. */
function splitSan(san: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < san.length; i++) {
    const c = san[i] as string;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && quoted && i + 1 < san.length) cur += san[++i];
    else if (c === ',' && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}
