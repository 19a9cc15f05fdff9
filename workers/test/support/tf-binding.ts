// Test helper: whether a TensorFlow binding is installed with its compiled library, judged
// independently of the backend package's own probe (which the tests check).
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export function tensorflowBindingPresent(): boolean {
  const req = createRequire(join(REPO, 'packages/backend/package.json'));
  return ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].some((name) => {
    try {
      const lib = join(dirname(req.resolve(`${name}/package.json`)), 'lib');
      return readdirSync(lib).some((d) => existsSync(join(lib, d, 'tfjs_binding.node')));
    } catch {
      return false;
    }
  });
}
