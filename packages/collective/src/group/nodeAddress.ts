import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { readlinkSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { NodeLayout } from '../algorithms/hierarchicalAllReduce.js';

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * The address of the interface this node uses to reach `masterHost`: ring
 * sockets bind there, not to every interface. Loopback masters give 127.0.0.1.
 */
export async function routeAddressTo(masterHost: string): Promise<string> {
  if (isLoopback(masterHost)) return masterHost === '::1' ? '::1' : '127.0.0.1';
  const ip = isIP(masterHost) ? masterHost : (await lookup(masterHost)).address;
  if (isLoopback(ip)) return '127.0.0.1';
  const family = isIP(ip) === 6 ? 'udp6' : 'udp4';
  const sock = createSocket(family);
  try {
    // connect() on UDP sends nothing; it only asks the kernel which route (and source address) it would use.
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(9, ip, () => resolve());
    });
    return sock.address().address;
  } finally {
    sock.close();
  }
}

/** This process's node: its hostname plus its network namespace where Linux names one. */
export function defaultNodeId(): string {
  let ns = '';
  try {
    ns = readlinkSync('/proc/self/ns/net');
  } catch {
    // not Linux, or no /proc: the hostname alone
  }
  return ns ? `${hostname()}/${ns}` : hostname();
}

/**
 * The nodes of a group from each rank's node id (indexed by rank): nodes in order of their lowest
 * rank, ranks ascending within each.
 */
export function layoutOf(nodeIds: readonly string[]): NodeLayout {
  const byId = new Map<string, number[]>();
  nodeIds.forEach((id, rank) => {
    const ranks = byId.get(id);
    if (ranks) ranks.push(rank);
    else byId.set(id, [rank]);
  });
  return { nodes: [...byId.values()] };
}
