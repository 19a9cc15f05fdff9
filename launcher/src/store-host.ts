import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { StoreClient, StoreServer } from '@mtlface/collective';
import { LaunchError } from './errors.js';

/**
 * The address node 0 binds for a `--master-addr` that may be a host name (Slurm gives names):
 * ZeroMQ binds interfaces or IPs only. A non-loopback address is preferred, because a name that
 * /etc/hosts maps to 127.0.1.1 would hide the store from the other nodes.
 */
export async function bindAddress(host: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  let addrs: Array<{ address: string; family: number }>;
  try {
    addrs = await lookup(host, { all: true });
  } catch (e) {
    throw new LaunchError(`--master-addr ${host}: cannot resolve it (${(e as Error).message})`);
  }
  const routable = addrs.find((a) => a.family === 4 && !a.address.startsWith('127.'));
  return (routable ?? addrs.find((a) => a.family === 4) ?? addrs[0])?.address ?? host;
}

/** Node 0 hosts the rendezvous store; port 0 picks a free one (`--standalone`). */
export async function hostStore(host: string, port: number, token: string): Promise<StoreServer> {
  try {
    return await StoreServer.listen({ host: await bindAddress(host), port, token });
  } catch (e) {
    const msg = (e as Error).message;
    if (/in use/i.test(msg)) {
      throw new LaunchError(
        `cannot host the rendezvous store at ${host}:${port}: the port is already in use (another run? choose --master-port, or --standalone for a free one)`,
      );
    }
    throw new LaunchError(`cannot host the rendezvous store at ${host}:${port}: ${msg}`);
  }
}

/**
 * Connects to the store, retrying until `deadlineMs` (node 0 may start after the others).
 * Every later call times out after `callTimeoutMs`.
 */
export async function connectStore(opts: {
  host: string;
  port: number;
  token: string;
  name: string;
  callTimeoutMs: number;
  waitMs: number;
  tokenDerived: boolean;
}): Promise<StoreClient> {
  const deadline = Date.now() + opts.waitMs;
  for (;;) {
    const left = deadline - Date.now();
    try {
      return await StoreClient.connect({
        host: opts.host,
        port: opts.port,
        token: opts.token,
        name: opts.name,
        timeoutMs: Math.max(1, Math.min(opts.callTimeoutMs, left)),
      });
    } catch (e) {
      const msg = (e as Error).message;
      if (/token/i.test(msg)) {
        throw new LaunchError(
          `the rendezvous store at ${opts.host}:${opts.port} rejected this node's run token` +
            (opts.tokenDerived
              ? ' (derived from the run id because --rdzv-token/MTL_RUN_TOKEN is unset: do the nodes use the same --run-id?)'
              : ' (--rdzv-token/MTL_RUN_TOKEN must be the same on every node)'),
        );
      }
      if (!/timed out/i.test(msg) || Date.now() >= deadline) {
        throw new LaunchError(
          `cannot reach the rendezvous store at ${opts.host}:${opts.port} within ${Math.round(opts.waitMs / 1000)}s: ${msg}`,
        );
      }
    }
  }
}
