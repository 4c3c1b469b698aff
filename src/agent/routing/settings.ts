// The agent's routing settings from its flags and cached files (an RTR
// validator, a static ROA file, an IRR prefix-list file, BFD timers),
// validated at start with errors that name the file, the entry and the value.
import { readFileSync } from 'node:fs';
import { parseCidr } from '../../model/addr.js';
import { invalid } from '../../model/errors.js';
import * as v from '../../model/validate.js';
import { DEFAULT_BFD, type Roa, type RoutingSettings } from './inputs.js';

export interface RoutingFlags {
  /** RTR validator `host:port` (IPv6 in brackets). */
  rpki?: string;
  /** JSON: `[{ "prefix": "203.0.113.0/24", "maxLength": 24, "asn": 64500 }, ...]`. */
  roaFile?: string;
  /** JSON: `{ "64500": ["203.0.113.0/24", "198.51.100.0/24{24,32}"], ... }` by remote ASN. */
  irrFile?: string;
  bfdIntervalMs?: number;
  bfdMultiplier?: number;
}

function readJson(field: string, file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw invalid(field, file, `must be a readable file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalid(field, file, `must hold JSON (${(e as Error).message})`);
  }
}

/** Parses a `host:port` (IPv6 `[addr]:port`). Throws E_INVALID_ARG naming `field`. */
export function hostPort(field: string, value: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]]+):(\d+)$/.exec(value);
  if (!m) throw invalid(field, value, 'must be host:port ([addr]:port for IPv6)');
  return { host: m[1] as string, port: v.int(field, Number(m[2]), 1, 65535) };
}

/** Validates a ROA list (from a file or a test). */
export function checkRoas(field: string, raw: unknown): Roa[] {
  if (!Array.isArray(raw)) throw invalid(field, raw, 'must be a JSON array of {prefix, maxLength, asn}');
  return raw.map((r, i) => {
    const f = `${field}[${i}]`;
    if (typeof r !== 'object' || r === null) throw invalid(f, r, 'must be an object {prefix, maxLength, asn}');
    const o = r as Record<string, unknown>;
    const c = parseCidr(`${f}.prefix`, o.prefix);
    const bits = c.family === 4 ? 32 : 128;
    const maxLength = o.maxLength === undefined ? c.prefix : v.int(`${f}.maxLength`, o.maxLength, c.prefix, bits);
    return { prefix: c.text, maxLength, asn: v.int(`${f}.asn`, o.asn, 0, 4294967295) };
  });
}

/** Validates IRR prefix lists by ASN: entries `prefix` or `prefix{min,max}`. */
export function checkIrr(field: string, raw: unknown): Record<string, string[]> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid(field, raw, 'must be a JSON object of ASN -> prefix list');
  const out: Record<string, string[]> = {};
  for (const [asn, list] of Object.entries(raw as Record<string, unknown>)) {
    const key = asn.replace(/^AS/i, '');
    if (!/^\d{1,10}$/.test(key) || Number(key) < 1 || Number(key) > 4294967295) throw invalid(`${field}.${asn}`, asn, 'keys must be ASNs (64500 or AS64500)');
    if (!Array.isArray(list)) throw invalid(`${field}.${asn}`, list, 'must be a list of prefixes');
    out[String(Number(key))] = list.map((e, i) => {
      const f = `${field}.${asn}[${i}]`;
      const m = typeof e === 'string' ? /^([^{]+?)(\{(\d{1,3}),(\d{1,3})\})?$/.exec(e) : null;
      if (!m) throw invalid(f, e, 'must be a prefix such as 203.0.113.0/24 or 203.0.113.0/24{24,32}');
      const c = parseCidr(f, m[1]);
      if (m[2] === undefined) return c.text;
      const [lo, hi] = [Number(m[3]), Number(m[4])];
      const bits = c.family === 4 ? 32 : 128;
      if (!(c.prefix <= lo && lo <= hi && hi <= bits)) throw invalid(f, e, `needs ${c.prefix} <= min <= max <= ${bits}`);
      return `${c.text}{${lo},${hi}}`;
    });
  }
  return out;
}

/** The settings the agent runs with. Throws E_INVALID_ARG naming the flag, file entry and value. */
export function loadRoutingSettings(f: RoutingFlags): RoutingSettings {
  return {
    rpki: f.rpki ? hostPort('--rpki', f.rpki) : null,
    roas: f.roaFile ? checkRoas(`--roa-file ${f.roaFile}`, readJson('--roa-file', f.roaFile)) : [],
    irr: f.irrFile ? checkIrr(`--irr-file ${f.irrFile}`, readJson('--irr-file', f.irrFile)) : {},
    bfd: {
      intervalMs: f.bfdIntervalMs === undefined ? DEFAULT_BFD.intervalMs : v.int('--bfd-interval', f.bfdIntervalMs, 10, 60_000),
      multiplier: f.bfdMultiplier === undefined ? DEFAULT_BFD.multiplier : v.int('--bfd-multiplier', f.bfdMultiplier, 1, 255),
    },
  };
}
