import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

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
