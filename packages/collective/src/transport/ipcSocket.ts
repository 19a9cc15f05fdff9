// The unix-domain socket files the transports listen on for same-host peers. A file outlives the
// process that made it unless someone unlinks it, so: its name carries the owner's pid, every path
// in use is unlinked on every way out of the process (close, exit, SIGTERM/SIGINT/SIGHUP), and the
// files that a killed process (SIGKILL) left are swept by the next transport that opens.
import { readdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NAME_RE = /^mtl-(?:(\d+)-)?[0-9a-f]+\.sock$/;
const EXIT_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
/** How long a probe of a socket file waits for connect (a dead one refuses at once). */
export const SOCKET_PROBE_TIMEOUT_MS = 1000;

const live = new Set<string>();
let hooked = false;

function unlinkLive(): void {
  for (const path of live) rmSync(path, { force: true });
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  unlinkLive();
  // Alone, this handler would have cancelled the signal's default action: take it back and re-raise,
  // so the process still ends by the signal. With other handlers, they decide what happens.
  if (process.listenerCount(signal) === 1) {
    for (const s of EXIT_SIGNALS) process.off(s, onSignal);
    hooked = false;
    process.kill(process.pid, signal);
  }
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', unlinkLive);
  for (const s of EXIT_SIGNALS) process.on(s, onSignal);
}

/** A fresh socket path in the temporary directory, unlinked when the process ends however it ends. */
export function ipcSocketPath(id: string): string {
  const path = join(tmpdir(), `mtl-${process.pid}-${id}.sock`);
  live.add(path);
  hookExit();
  return path;
}

/** Unlinks a socket path this process no longer listens on. */
export function releaseIpcSocket(path: string): void {
  rmSync(path, { force: true });
  live.delete(path);
}

function pidGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function refusesConnection(path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(path);
    const done = (refused: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(refused);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(false));
    sock.once('error', (err: NodeJS.ErrnoException) =>
      done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT'),
    );
  });
}

/**
 * Removes `mtl-*.sock` files in `dir` that no process serves: the owner pid in the name is gone (or the
 * name has none) and a connection to the file is refused. Both must hold, because a pid from another
 * pid namespace sharing the directory looks gone while its socket still answers. Returns how many it
 * removed; never throws.
 */
export async function sweepStaleSockets(
  dir = tmpdir(),
  timeoutMs = SOCKET_PROBE_TIMEOUT_MS,
): Promise<number> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  const stale = await Promise.all(
    names.map(async (name) => {
      const m = NAME_RE.exec(name);
      if (!m) return false;
      const path = join(dir, name);
      if (live.has(path) || (m[1] !== undefined && !pidGone(Number(m[1])))) return false;
      if (!(await refusesConnection(path, timeoutMs))) return false;
      try {
        rmSync(path, { force: true });
        return true;
      } catch {
        return false; // another user's file
      }
    }),
  );
  return stale.filter(Boolean).length;
}

let swept: Promise<number> | null = null;

/** {@link sweepStaleSockets} of the temporary directory, once per process (every transport opening after waits for it). */
export function sweepStaleSocketsOnce(): Promise<number> {
  swept ??= sweepStaleSockets();
  return swept;
}
