import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { StoreClient, StoreServer } from '@mtlface/collective';
import { LaunchError } from './errors.js';

/**
 * The address node 0 binds for a `--master-addr` that may be a host name (Slurm gives names):
 * ZeroMQ binds interfaces or IPs only. A non-loopback address is preferred, because a name that
 * /etc/hosts maps to 127.0.1.1 would hide the store from the other nodes.
 *
 * A name that does not resolve yet is looked up again until `waitMs` has passed: node 0's own
 * name can be a DNS record that appears after the process starts (a Kubernetes pod's name through
 * its headless Service is published a moment after the pod is created). `onWait` hears the first miss.
 */
export async function bindAddress(host: string, waitMs = 0, onWait?: (why: string) => void): Promise<string> {
  if (isIP(host) !== 0) return host;
  const deadline = Date.now() + waitMs;
  let pauseMs = 100;
  let addrs: Array<{ address: string; family: number }> | undefined;
  while (addrs === undefined) {
    try {
      addrs = await lookup(host, { all: true });
    } catch (e) {
      const why = (e as Error).message;
      // ENOTFOUND: no such name (yet); EAI_AGAIN: the resolver did not answer. Anything else is final.
      const missing = ['ENOTFOUND', 'EAI_AGAIN'].includes((e as NodeJS.ErrnoException).code ?? '');
      const left = deadline - Date.now();
      if (!missing || left <= 0) {
        const within = waitMs > 0 ? ` within ${Math.round(waitMs / 1000)}s` : '';
        throw new LaunchError(`--master-addr ${host}: cannot resolve it${within} (${why})`);
      }
      if (pauseMs === 100) onWait?.(why);
      await new Promise((r) => setTimeout(r, Math.min(pauseMs, left)));
      pauseMs = Math.min(2 * pauseMs, 2000);
    }
  }
  const routable = addrs.find((a) => a.family === 4 && !a.address.startsWith('127.'));
  return (routable ?? addrs.find((a) => a.family === 4) ?? addrs[0])?.address ?? host;
}

/**
 * Node 0 hosts the rendezvous store; port 0 picks a free one (`--standalone`). Its own host name
 * may take up to `resolveWaitMs` to resolve (see bindAddress).
 */
export async function hostStore(
  host: string,
  port: number,
  token: string,
  resolveWaitMs = 0,
  onWait?: (why: string) => void,
): Promise<StoreServer> {
  const bind = await bindAddress(host, resolveWaitMs, onWait);
  try {
    return await StoreServer.listen({ host: bind, port, token });
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
