/**
 * Test helpers: run `mtl-launch` from its TypeScript sources as a real child process.
 *
 *   const r = await launchFromSource(['--nproc', '2', script], { timeoutMs: 30_000 });
 *   assert.equal(r.code, 0);
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const LAUNCHER_CLI = join(REPO_ROOT, 'launcher', 'src', 'cli.ts');
/**
 * Node flags that run the repository from source (as scripts/source-argv.mjs), with tsx's loader
 * resolved here so that a launcher started in any working directory finds it.
 */
export const SOURCE_EXEC_ARGV = ['--conditions=mtl-source', '--import', import.meta.resolve('tsx')];

export interface LaunchOptions {
  cwd?: string;
  /** Added to (and overriding) the test process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Kill the launcher (SIGKILL) and reject after this long; default 60 s. */
  timeoutMs?: number;
  /** A command the launcher runs under, e.g. ['ip', 'netns', 'exec', 'ns0']. */
  prefix?: string[];
}

export interface LaunchResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

/** Starts `mtl-launch args...` from source; stdout/stderr piped. */
export function spawnLauncher(args: string[], opts: LaunchOptions = {}): ChildProcess {
  const argv = [process.execPath, ...SOURCE_EXEC_ARGV, LAUNCHER_CLI, ...args];
  const [cmd, ...rest] = [...(opts.prefix ?? []), ...argv];
  return spawn(cmd!, rest, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Collects a launcher's output until it exits (or kills it after `timeoutMs`, then rejects). */
export function collect(child: ChildProcess, timeoutMs = 60_000): Promise<LaunchResult> {
  const start = Date.now();
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`mtl-launch did not exit within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`),
      );
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - start });
    });
  });
}

/** Runs `mtl-launch args...` from source to completion. */
export function launchFromSource(args: string[], opts: LaunchOptions = {}): Promise<LaunchResult> {
  return collect(spawnLauncher(args, opts), opts.timeoutMs);
}

/** A fresh temporary directory and its cleanup. */
export function tempDir(prefix = 'mtl-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes a small worker script and returns its path. */
export function writeScript(dir: string, name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

/** A TCP port that was free a moment ago on `host`. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Lines of `[rankN]: ...` output grouped by rank. */
export function linesByRank(output: string): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const line of output.split('\n')) {
    const m = /^\[rank(\d+)\]: (.*)$/.exec(line);
    if (!m) continue;
    const rank = Number(m[1]);
    out.set(rank, [...(out.get(rank) ?? []), m[2] ?? '']);
  }
  return out;
}

/** True while a process with this pid runs (a zombie nobody reaped yet counts as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Polls `cond` every 50 ms until true or `timeoutMs` passed; resolves with the final value. */
export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
