// Each workspace package's manifest declares exactly what its code imports: a dependency its
// sources use but do not declare resolves today only through workspace hoisting, and one it
// declares but never uses is weight every install carries. Tests may use devDependencies and the
// root's tooling (fast-check, tsx).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { REPO } from './train-helpers.js';

const PACKAGES = [...readdirSync(join(REPO, 'packages')).map((p) => `packages/${p}`), 'launcher', 'workers'];

/** Declared but imported by no source file, each for a stated reason. */
const USED_WITHOUT_IMPORT: Record<string, Record<string, string>> = {
  'packages/backend': {
    'node-addon-api': 'headers of the oneDNN addon (binding.gyp)',
    '@tensorflow/tfjs-node': 'optional engine, imported by name at run time (select.ts importOptional)',
    '@tensorflow/tfjs-node-gpu': 'optional engine, imported by name at run time (select.ts importOptional)',
  },
};

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'node_modules' ? [] : files(p);
    return /\.(ts|mts|mjs|js)$/.test(f) && !f.endsWith('.d.ts') ? [p] : [];
  });
}

function imported(paths: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const re =
    /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+|\bimport\.meta\.resolve\(\s*|\brequire(?:\.resolve)?\(\s*|\)\(\s*)['"]([^'".$][^'"]*)['"]/g;
  for (const p of paths) {
    for (const m of readFileSync(p, 'utf8').matchAll(re)) {
      const spec = m[1]!;
      if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!out.has(name)) out.set(name, p.slice(REPO.length));
    }
  }
  return out;
}

const rootDev = Object.keys(
  JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).devDependencies ?? {},
);

for (const pkg of PACKAGES) {
  test(`${pkg}: package.json declares exactly what its sources import`, () => {
    const manifest = JSON.parse(readFileSync(join(REPO, pkg, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string> | undefined
    >;
    const runtime = new Set([
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.optionalDependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ]);
    const src = imported(files(join(REPO, pkg, 'src')));
    const self = manifest.name as unknown as string;
    const undeclared = [...src].filter(([n]) => n !== self && !runtime.has(n)).map(([n, f]) => `${n} (${f})`);
    assert.deepEqual(undeclared, [], `imported by ${pkg}/src but not in its dependencies`);
    const allowed = USED_WITHOUT_IMPORT[pkg] ?? {};
    const unused = [...runtime].filter((n) => !src.has(n) && !(n in allowed));
    assert.deepEqual(unused, [], `declared by ${pkg} but imported by none of its sources`);

    const dev = new Set([...runtime, ...Object.keys(manifest.devDependencies ?? {}), ...rootDev]);
    const tests = imported([...files(join(REPO, pkg, 'test')), ...files(join(REPO, pkg, 'bench'))]);
    const testUndeclared = [...tests]
      .filter(([n]) => n !== self && !dev.has(n))
      .map(([n, f]) => `${n} (${f})`);
    assert.deepEqual(testUndeclared, [], `imported by ${pkg}'s tests or benches but declared nowhere`);
  });
}
