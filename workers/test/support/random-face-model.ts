// A face model of small random networks (demo backbone at 32 px, age estimator, generator) and its
// checkpoint file, for tests that run the mtl-face commands and compare with the same model in process.
import { writeFileSync } from 'node:fs';
import { AgeEstimation, AgingModule, buildBackbone, encodeSafetensors, prefixedState } from '@mtlface/model';
import { faceModelFromModules } from '@mtlface/eval/model';

export function randomFaceModel() {
  const backbone = buildBackbone({ arch: 'demo', inputSize: 32, embeddingSize: 64 });
  const estimation = new AgeEstimation({ channels: 128, inputSize: 32, groups: 7, hidden: 32 });
  const generator = new AgingModule({ groups: 7, widths: [16, 32, 64, 128], unitCount: 8 });
  return {
    backbone,
    estimation,
    generator,
    model: faceModelFromModules({ backbone, estimation, generator }),
    /** writes the three networks as one `.safetensors` checkpoint */
    save: async (path: string) =>
      writeFileSync(
        path,
        encodeSafetensors(
          await prefixedState([
            ['backbone', backbone],
            ['estimation', estimation],
            ['generator', generator],
          ]),
        ),
      ),
    dispose: () => [backbone, estimation, generator].forEach((m) => m.dispose()),
  };
}
