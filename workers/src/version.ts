import { createRequire } from 'node:module';

/** The version `mtl-face`, `mtl-data` and `mtl-doctor --version` print: this package's. */
export function workersVersion(): string {
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
}
