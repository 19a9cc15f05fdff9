// The tensor file a `--checkpoint` names, checked before anything reads it: a training checkpoint
// (directory or sidecar) → its newest intact one; a .safetensors with a sidecar beside it → the file,
// once its size and sha256 match what the sidecar recorded. Imported weights have no sidecar.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { findLatestCheckpoint, verifyCheckpoint } from '@mtlface/train';

export function checkpointTensorsPath(checkpoint: string): string {
  if (!checkpoint.endsWith('.safetensors')) {
    const found = findLatestCheckpoint(checkpoint, (m) => console.error(m));
    if (!found) throw new Error(`${checkpoint}: no usable checkpoint found`);
    return found.tensorsPath;
  }
  const sidecar = `${checkpoint.slice(0, -'.safetensors'.length)}.json`;
  if (!existsSync(sidecar)) return checkpoint;
  const r = verifyCheckpoint(sidecar);
  if ('problem' in r)
    throw new Error(`${checkpoint}: refused, checked against its sidecar ${sidecar}: ${r.problem}`);
  if (resolve(r.tensorsPath) !== resolve(checkpoint)) {
    throw new Error(`${checkpoint}: refused, its sidecar ${sidecar} describes ${r.tensorsPath} instead`);
  }
  return checkpoint;
}
