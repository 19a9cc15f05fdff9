/**
 * An error the user can act on: the CLI prints its message as one line and exits non-zero,
 * never a stack trace. Everything else is a bug and keeps its stack.
 */
export class LaunchError extends Error {
  override readonly name = 'LaunchError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
