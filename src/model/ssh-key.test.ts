import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeftError } from './errors.js';
import { parseSshKey } from './ssh-key.js';

// Made with ssh-keygen; the fingerprints are what `ssh-keygen -l` printed for them.
const KEYS = {
  ed25519: {
    text: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICsGYMEXLBhGso2iwZ5c4n6I0X5XwSK/tagQqQ/PKa/k user@ed25519',
    fingerprint: 'SHA256:3QLCeKh7PS725Ez3mGKXizfs5ApPEVEOf+3CSiS0FEE',
  },
  rsab2048: {
    text: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDJ/vd+/Prm8Wjog6gG0MnVcLC04+2ynJYqI6avPXEfS/QpEe77g5yTgcr1nvqAqEroDJH80Z1nArEfz9OsaFy8wFmRXJRJMAcQU4xkzjysgwzelmM9BW3pomGoLXefYyWf3SHSa80TgMwh0SeojyRGIkupSok8lQJ7ukRU2OYd6stdPUUlFZW9Pn92Wypr1idbWKej4x4nohWkTtYrW4ilxiuWc8M78kPqixIIHTAEFu6pQVTB9CMDekaUQWPR0xcfSPM+E1Ex9IOVhtPbEMQmlbVrqqW6xh4C203450n/LciGoi+cGTQomWbzypDPvEfZQrhLbbPf/tslyFKTucSz user@rsab2048',
    fingerprint: 'SHA256:B3HwOxWmfPPCEVBfumfCmXw63el6ryZsblYuhLZbaMM',
  },
  rsab1024: {
    text: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDI8h/16mYTof0ciGNL+6tXRj3/qzj9NFDtWpMSYwWlDkwOcKhI6CEzp/WOfDqnJSUjUvFAuFKC2Mulxys1xVjM2BOnjMu/m2tsD183kxJXUW6Aqja8in4Y484cmmKL5s5Vodu63E9WLmEaKEhTHS49ILYkuZEedLFYsk2gS1PQPQ== user@rsab1024',
    fingerprint: 'SHA256:snxyAVVP7xo/FmI9phQ5XSDWanYjtvLTGfmxGQ87YJU',
  },
  ecdsab256: {
    text: 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJzx+aKcg+jMCGLD/KzAE0CatV7DOfCkxAnAk4kwKKUYZ8WDJVqt17XIeABl5QZr2LNbA5lPluoY9BqLboYQK0I= user@ecdsab256',
    fingerprint: 'SHA256:8/zTl3XNdA9POi/n0A21WHZIzfyOUxacGX2cWyYrXyY',
  },
  ecdsab521: {
    text: 'ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBABrQ8ffh4d6V0lEnRlyvurvNj/8/kXwW47nE3uETy2PNJYtA3QDspMMcbxnnfYuavY0UCglpEuVbfYxqTVUN5St6wFxtzRneZWiwLIuN+Q0YLjJR57EZUN5iD6r8gkmMG10R37pKJLw7oULTMCics3xK3e0rvXlpaBdSkz0YlPsf69mlg== user@ecdsab521',
    fingerprint: 'SHA256:1UVwfoafuKR29Xd63S8Wfex4cR1Nqsd7sD7Y8zRs7lc',
  },
};

const refused = (value: unknown, part: RegExp) =>
  assert.throws(
    () => parseSshKey('publicKey', value),
    (e: unknown) => e instanceof WeftError && e.code === 'E_INVALID_ARG' && e.field === 'publicKey' && part.test(e.message),
    String(value).slice(0, 60),
  );

test('parseSshKey takes what ssh-keygen writes, with its fingerprint', () => {
  for (const [name, k] of Object.entries(KEYS)) {
    if (name === 'rsab1024') continue;
    const p = parseSshKey('publicKey', `  ${k.text}\n`);
    assert.equal(p.fingerprint, k.fingerprint, name);
    assert.equal(p.text, k.text, `${name}: trimmed, as written`);
    assert.equal(p.type, k.text.split(' ')[0]);
  }
  // Without a comment, and with tabs and a comment of several words.
  const [type, b64] = KEYS.ed25519.text.split(' ');
  assert.equal(parseSshKey('k', `${type} ${b64}`).text, `${type} ${b64}`);
  assert.equal(parseSshKey('k', `${type}\t${b64}  two words`).text, `${type} ${b64} two words`);
});

test('parseSshKey refuses what a guest sshd would not use, naming why', () => {
  const [type, b64] = KEYS.ed25519.text.split(' ') as [string, string];
  refused(KEYS.rsab1024.text, /1024 bits; at least 2048/);
  refused('', /OpenSSH public key/);
  refused(42, /OpenSSH public key/);
  refused(`ssh-dss ${b64}`, /DSA keys are refused/);
  refused(`ssh-foo ${b64}`, /of type ssh-ed25519/);
  refused(`${type} not*base64`, /not base64/);
  refused(`${type} ${b64.slice(0, 40)}`, /not base64|does not hold/);
  // The blob says ed25519; the line says rsa.
  refused(`ssh-rsa ${b64}`, /does not hold a ssh-rsa key/);
  refused(`${type} ${b64} comment\nssh-ed25519 ${b64}`, /line breaks/);
  refused(`${type} ${b64}\u0000`, /control characters/);
  refused(`${type} ${'A'.repeat(20_000)}`, /OpenSSH public key/);
  // An Ed25519 blob with a short key.
  const blob = Buffer.from(b64, 'base64');
  const short = Buffer.concat([blob.subarray(0, 4 + 11), Buffer.from([0, 0, 0, 31]), blob.subarray(19, 50)]);
  refused(`${type} ${short.toString('base64')}`, /32 bytes/);
});
