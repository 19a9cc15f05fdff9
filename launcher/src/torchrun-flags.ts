/**
 * torchrun's rendezvous flags (`--rdzv-backend`, `--rdzv-endpoint`, `--rdzv-conf`) and elastic
 * `--nnodes MIN:MAX`, mapped onto this launcher's one store and static world. Pure.
 */
import { isIP } from 'node:net';
import { LaunchError } from './errors.js';

/** `c10d`: node ranks may be left to the rendezvous; `static`: every node gives `--node-rank`. */
export const RDZV_BACKENDS = ['c10d', 'static'] as const;
export type RdzvBackend = (typeof RDZV_BACKENDS)[number];

/** torchrun's default port for a c10d endpoint given without one. */
export const C10D_DEFAULT_PORT = 29400;

export function parseRdzvBackend(value: string): RdzvBackend {
  if ((RDZV_BACKENDS as readonly string[]).includes(value)) return value as RdzvBackend;
  throw new LaunchError(
    `--rdzv-backend ${value} is not supported: use c10d or static (the launcher of one node hosts the store; no etcd)`,
  );
}

/** `HOST[:PORT]`, `[v6addr]:PORT` or a bare IPv6 address. */
export function parseRdzvEndpoint(value: string, defaultPort: number): { host: string; port: number } {
  const v = value.trim();
  let host = v;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(v);
  if (bracket) [, host = '', portText] = bracket;
  else if (isIP(v) !== 6 && v.includes(':')) {
    host = v.slice(0, v.lastIndexOf(':'));
    portText = v.slice(v.lastIndexOf(':') + 1);
  }
  if (host === '') throw new LaunchError(`--rdzv-endpoint '${value}': expected HOST[:PORT]`);
  if (portText === undefined) return { host, port: defaultPort };
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
    throw new LaunchError(`--rdzv-endpoint '${value}': the port must be in 1..65535`);
  return { host, port };
}

/** What `--rdzv-conf` may set. */
export interface RdzvConf {
  /** `timeout` or `join_timeout`: seconds to wait for every node (`--rdzv-timeout`). */
  joinTimeoutS?: number;
  /** `read_timeout`: seconds a store call may take (`--heartbeat-timeout`). */
  readTimeoutS?: number;
  /** `is_host`: this node hosts the store (default: its address is the endpoint's). */
  isHost?: boolean;
}

const SECONDS_KEYS: Record<string, 'joinTimeoutS' | 'readTimeoutS' | null> = {
  timeout: 'joinTimeoutS',
  join_timeout: 'joinTimeoutS',
  read_timeout: 'readTimeoutS',
  // Elastic membership's windows: with a fixed world there is no last call and no closing phase.
  last_call_timeout: null,
  close_timeout: null,
};

/** `k=v,k=v` → the settings it names; an unknown key or a bad value is refused by name. */
export function parseRdzvConf(value: string): RdzvConf {
  const conf: RdzvConf = {};
  for (const item of value.split(',').map((s) => s.trim())) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq).trim();
    const v = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (key === 'is_host') {
      if (!/^(1|0|true|false|yes|no)$/i.test(v))
        throw new LaunchError(`--rdzv-conf is_host=${v}: expected true or false`);
      conf.isHost = /^(1|true|yes)$/i.test(v);
      continue;
    }
    if (!(key in SECONDS_KEYS)) {
      throw new LaunchError(
        `--rdzv-conf: unknown key '${key}' (known: ${[...Object.keys(SECONDS_KEYS), 'is_host'].join(', ')})`,
      );
    }
    const n = Number(v);
    if (v === '' || !Number.isFinite(n) || n <= 0)
      throw new LaunchError(`--rdzv-conf ${key}=${v}: expected a positive number of seconds`);
    const field = SECONDS_KEYS[key];
    if (field) conf[field] = n;
  }
  return conf;
}

/** `N` or torchrun's elastic `MIN:MAX`, accepted while MIN = MAX (a fixed world). */
export function parseNnodes(value: string): string {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(value);
  if (!m) return value;
  const [min, max] = [Number(m[1]), Number(m[2])];
  if (min === max) return String(min);
  if (min > max) throw new LaunchError(`--nnodes ${value}: MIN must not exceed MAX`);
  throw new LaunchError(
    `--nnodes ${value}: elastic membership (MIN < MAX) is not supported; give a fixed size, e.g. --nnodes ${max}:${max}`,
  );
}
