/**
 * Test helpers: "hosts" as Linux network namespaces joined by a veth pair (needs root), the way
 * test/launcher-netns.test.ts builds them, plus per-host name resolution.
 *
 *   const hosts = netnsHosts('dpc');
 *   if (hosts.skip) ...;                       // why they could not be built (not root, no ip)
 *   hosts.resolve({ 'mtlface-0.mtlface': hosts.addr[0] });
 *   spawn('ip', ['netns', 'exec', hosts.ns[0], ...]);
 *   hosts.tearDown();
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';

export interface NetnsHosts {
  /** Namespace names, host 0 and host 1. */
  ns: [string, string];
  /** Each host's address on the shared /24. */
  addr: [string, string];
  /** Why the hosts could not be built (a test skip reason), or undefined. */
  skip: string | undefined;
  /**
   * Makes names resolve inside both namespaces: `ip netns exec` bind-mounts
   * /etc/netns/<ns>/hosts over /etc/hosts for the command it runs.
   */
  resolve(names: Record<string, string>): void;
  tearDown(): void;
}

function sh(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr ?? '') + (r.error?.message ?? '') };
}

/** Two namespaces with one private address each; `tag` (a few letters) keeps names apart between files. */
export function netnsHosts(tag: string): NetnsHosts {
  const id = `${process.pid % 10000}${Math.floor(Math.random() * 100)}`;
  const ns: [string, string] = [`${tag}${id}a`, `${tag}${id}b`];
  const veth = [`v${tag}${id}a`, `v${tag}${id}b`];
  // A random /24 in 10.0.0.0/8 so that concurrent runs do not collide.
  const net = `10.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;
  const addr: [string, string] = [`${net}.1`, `${net}.2`];
  const etc = ns.map((n) => `/etc/netns/${n}`);

  const tearDown = (): void => {
    for (const n of ns) sh(['ip', 'netns', 'del', n]);
    sh(['ip', 'link', 'del', veth[0]!]); // only left over if moving it into the namespace failed
    for (const d of etc) rmSync(d, { recursive: true, force: true });
  };

  let skip: string | undefined;
  if (process.getuid?.() !== 0) skip = 'needs root for ip netns';
  else {
    const steps = [
      ['ip', 'netns', 'add', ns[0]],
      ['ip', 'netns', 'add', ns[1]],
      ['ip', 'link', 'add', veth[0]!, 'type', 'veth', 'peer', 'name', veth[1]!],
      ['ip', 'link', 'set', veth[0]!, 'netns', ns[0]],
      ['ip', 'link', 'set', veth[1]!, 'netns', ns[1]],
      ...[0, 1].flatMap((i) => [
        ['ip', '-n', ns[i]!, 'addr', 'add', `${addr[i]}/24`, 'dev', veth[i]!],
        ['ip', '-n', ns[i]!, 'link', 'set', veth[i]!, 'up'],
        ['ip', '-n', ns[i]!, 'link', 'set', 'lo', 'up'],
      ]),
    ];
    for (const step of steps) {
      const r = sh(step);
      if (!r.ok) {
        skip = `${step.join(' ')} failed: ${r.err.trim()}`;
        tearDown();
        break;
      }
    }
  }

  return {
    ns,
    addr,
    skip,
    resolve(names) {
      const lines = [
        '127.0.0.1 localhost',
        '::1 localhost',
        ...Object.entries(names).map(([n, a]) => `${a} ${n}`),
      ];
      for (const d of etc) {
        mkdirSync(d, { recursive: true });
        writeFileSync(`${d}/hosts`, lines.join('\n') + '\n');
      }
    },
    tearDown,
  };
}
