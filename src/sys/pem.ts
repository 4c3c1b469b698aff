// Reads the PEM files TLS is configured with (certificates, CA bundles, keys)
// and checks each holds what its flag says, so a wrong or missing file stops
// the process at start with the flag and the file named, not at the first handshake.
import { readFileSync } from 'node:fs';
import { WeftError } from '../model/errors.js';

export type PemKind = 'certificate' | 'private key';

/** The PEM labels each kind accepts (RFC 7468, and OpenSSL's traditional key labels). */
const LABELS: Record<PemKind, RegExp> = {
  certificate: /^-----BEGIN CERTIFICATE-----\r?$/m,
  'private key': /^-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----\r?$/m,
};

/** What a file of the wrong kind most likely is, for the message. */
function kindOf(text: string): string {
  const label = /^-----BEGIN ([A-Z0-9 ]+)-----/m.exec(text)?.[1];
  return label ? `a PEM ${label}` : 'no PEM block';
}

/**
 * The contents of `file`, given as `flag`, checked to hold a PEM block of
 * `kind` (a certificate file may hold a chain, a CA file several CAs).
 * Throws E_INVALID_ARG naming the flag and the file when it cannot be read
 * or holds something else. Pure read: nothing is parsed beyond the labels
 * (the TLS layer parses the contents and names what is wrong in them).
 */
export function readPem(flag: string, file: string, kind: PemKind): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new WeftError('E_INVALID_ARG', `invalid ${flag} ${JSON.stringify(file)}: cannot read it (${why}); must be a readable PEM ${kind} file`, flag, {
      cause: e,
    });
  }
  const text = data.toString('latin1');
  if (!LABELS[kind].test(text))
    throw new WeftError(
      'E_INVALID_ARG',
      `invalid ${flag} ${JSON.stringify(file)}: holds ${kindOf(text)}; must be a PEM ${kind} (-----BEGIN ${kind === 'certificate' ? 'CERTIFICATE' : 'PRIVATE KEY'}-----)`,
      flag,
    );
  return data;
}
