// SSH public keys as tenants give them (OpenSSH's one-line form, what
// `ssh-keygen` writes to id_*.pub): checked the way sshd would read them,
// so a key the API accepts is one a guest can use, and fingerprinted as
// `ssh-keygen -l` shows them.
import { createHash } from 'node:crypto';
import { invalid } from './errors.js';

/** What a guest's sshd accepts, and what the blob of each must say inside. */
const TYPES: Record<string, { curve?: string }> = {
  'ssh-ed25519': {},
  'ssh-rsa': {},
  'ecdsa-sha2-nistp256': { curve: 'nistp256' },
  'ecdsa-sha2-nistp384': { curve: 'nistp384' },
  'ecdsa-sha2-nistp521': { curve: 'nistp521' },
  'sk-ssh-ed25519@openssh.com': {},
  'sk-ecdsa-sha2-nistp256@openssh.com': { curve: 'nistp256' },
};
export const SSH_KEY_TYPES = Object.keys(TYPES);

/** Below this an RSA key is refused (OpenSSH 8.8 and NIST both ask for 2048 bits). */
export const RSA_MIN_BITS = 2048;
export const SSH_KEY_MAX = 16_384;

export interface SshPublicKey {
  type: string;
  /** `SHA256:` and the unpadded base64 of the blob's SHA-256, as `ssh-keygen -l`. */
  fingerprint: string;
  /** type, blob and comment (when there is one), single-spaced: what goes into authorized_keys. */
  text: string;
}

/** The SSH wire strings of a key blob (RFC 4251 section 5: uint32 length, bytes), or null when it is not one. */
function wireStrings(blob: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  let at = 0;
  while (at < blob.length) {
    if (at + 4 > blob.length) return null;
    const n = blob.readUInt32BE(at);
    at += 4;
    if (at + n > blob.length) return null;
    out.push(blob.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Bits of an RFC 4251 mpint (big-endian, a leading zero byte when the top bit is set). */
function mpintBits(b: Buffer): number {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  if (i === b.length) return 0;
  return (b.length - i - 1) * 8 + (32 - Math.clz32(b[i] as number));
}

export function parseSshKey(field: string, value: unknown): SshPublicKey {
  const allowed = `must be an OpenSSH public key on one line ("ssh-ed25519 AAAA... comment", as in ~/.ssh/id_ed25519.pub) of type ${SSH_KEY_TYPES.join(', ')}`;
  if (typeof value !== 'string' || value.length > SSH_KEY_MAX) throw invalid(field, value, allowed);
  const line = value.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line)) throw invalid(field, value, `${allowed}, without line breaks or control characters`);
  const [type, b64, ...rest] = line.split(/[ \t]+/);
  if (type === undefined || b64 === undefined) throw invalid(field, value, allowed);
  const t = Object.hasOwn(TYPES, type) ? TYPES[type] : undefined;
  if (!t) {
    const hint = type.startsWith('ssh-dss') ? ' (DSA keys are refused: OpenSSH no longer accepts them)' : '';
    throw invalid(field, value, `${allowed}${hint}`);
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw invalid(field, value, `${allowed}: the key after its type is not base64`);
  const blob = Buffer.from(b64, 'base64');
  const parts = wireStrings(blob);
  if (!parts || parts.length === 0 || parts[0]?.toString('latin1') !== type)
    throw invalid(field, value, `${allowed}: the key's data does not hold a ${type} key (truncated, or the type does not match)`);
  const bad = (what: string) => invalid(field, value, `is not a valid ${type} key: ${what}`);
  if (type === 'ssh-ed25519' && (parts.length !== 2 || parts[1]?.length !== 32)) throw bad('an Ed25519 key is 32 bytes');
  if (type === 'sk-ssh-ed25519@openssh.com' && (parts.length !== 3 || parts[1]?.length !== 32)) throw bad('an Ed25519 key is 32 bytes, and an application');
  if (type === 'ssh-rsa') {
    if (parts.length !== 3) throw bad('an RSA key is an exponent and a modulus');
    const bits = mpintBits(parts[2] as Buffer);
    if (bits < RSA_MIN_BITS) throw bad(`its modulus has ${bits} bits; at least ${RSA_MIN_BITS} are needed`);
  }
  if (t.curve !== undefined) {
    const want = type.startsWith('sk-') ? 4 : 3;
    if (parts.length !== want || parts[1]?.toString('latin1') !== t.curve) throw bad(`the curve must be ${t.curve}`);
    // An uncompressed point: 0x04, then two coordinates.
    if (parts[2]?.[0] !== 4) throw bad('the point must be uncompressed');
  }
  const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  const comment = rest.join(' ');
  return { type, fingerprint, text: comment === '' ? `${type} ${b64}` : `${type} ${b64} ${comment}` };
}
