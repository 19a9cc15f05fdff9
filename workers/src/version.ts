import { readFileSync } from 'node:fs';

/** The version printed by `mtl-face --version` and `mtl-data --version` (this package's, as mtl-launch prints the launcher's). */
export function workersVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
