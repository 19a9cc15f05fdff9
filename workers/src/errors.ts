// How a worker reports a failure. Errors the user can act on (config, data, disk, checkpoints,
// a peer that went away) are one line: what, where, and what to do. A stack trace is printed only
// for everything else — a bug — or when MTL_DEBUG=1 asks for it.

/** Error classes (by name, so this file imports no package) whose message already says what and where. */
const EXPECTED: Record<string, string> = {
  ConfigError: 'fix the config or the override',
  CheckpointError: '',
  AnnotationError: 'fix that line of the annotation list',
  DatasetError: 'check data.train_list and data.root',
  BadImageError: 'replace the file or remove its line from the annotation list',
  RecordIOError: '',
  PickleError: '',
  CollectiveError: 'see the failing rank above',
};

const DISK: Record<string, string> = {
  ENOSPC: 'free space on that filesystem, then restart (training resumes from the last checkpoint)',
  EDQUOT: 'raise the quota or free space, then restart',
  EIO: 'check the device; the last complete checkpoint is the resume point',
  EROFS: 'choose a writable directory',
  EACCES: 'check the permissions of that path',
  EPERM: 'check the permissions of that path',
  ENOENT: 'check the path',
};

/** The one line for an expected error, or null for a bug. */
export function expectedErrorLine(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const hint = EXPECTED[err.name];
  if (hint !== undefined)
    return hint && !err.message.includes(hint) ? `${err.message} (${hint})` : err.message;
  const code = (err as NodeJS.ErrnoException).code;
  if (code && DISK[code]) {
    const path = (err as NodeJS.ErrnoException).path;
    const where = path && !err.message.includes(path) ? ` (${path})` : '';
    return `${err.message}${where}: ${DISK[code]}`;
  }
  return null;
}

/** Prints a failure for people: the one line, or the stack of a bug. Returns the exit code. */
export function reportFailure(err: unknown, prefix: string, env: NodeJS.ProcessEnv = process.env): number {
  const line = expectedErrorLine(err);
  const debug = env.MTL_DEBUG === '1';
  if (line !== null) {
    console.error(`${prefix}error: ${line.replace(/\n/g, `\n${prefix}error: `)}`);
    if (debug && err instanceof Error && err.stack) console.error(err.stack);
    return err instanceof Error && err.name === 'ConfigError' ? 2 : 1;
  }
  console.error(
    `${prefix}training failed (a bug; please report it): ${(err as Error)?.stack ?? String(err)}`,
  );
  return 1;
}
