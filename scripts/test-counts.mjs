#!/usr/bin/env node
// Prints the counts of the last `npm test` run (out/test-summary.json, written by scripts/test.mjs)
// in the form the READMEs quote, so they are regenerated rather than typed.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const file = join(fileURLToPath(new URL('..', import.meta.url)), 'out', 'test-summary.json');
if (!existsSync(file)) {
  console.error(`${file}: no test run recorded yet; run npm test first`);
  process.exit(1);
}
const s = JSON.parse(readFileSync(file, 'utf8'));
console.log(
  `${s.tests} tests in ${s.files} files: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped`,
);
for (const k of s.skips) console.log(`  skipped: ${k.test} (${k.reason})`);
