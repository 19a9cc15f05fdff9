// face-api.js itself, as the reference for our reimplementations of its networks: its browser bundle (which
// carries its own tfjs and CPU backend) run in a separate V8 context, with the weights loaded by tfjs's own
// decoder, so neither our weight reader nor our tfjs kernels take part in the reference numbers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';
import { faceApiModelDir } from '../../src/align/index.js';

export interface FaceApiReference {
  ageGender(rgb: Uint8Array, height: number, width: number): Promise<{ age: number; male: number }>;
  descriptor(rgb: Uint8Array, height: number, width: number): Promise<Float32Array>;
}

/** Loads face-api's bundle; throws with the reason when its tfjs build cannot load here. */
export async function loadFaceApiReference(): Promise<FaceApiReference> {
  const dir = faceApiModelDir();
  const src = readFileSync(join(dir, '..', 'dist', 'face-api.js'), 'utf8');
  // no `process` in the context: the bundle then takes the plain-JS path instead of Node's util module
  const ctx = vm.createContext({
    console: { log() {}, warn() {}, error() {}, info() {} },
    TextEncoder,
    TextDecoder,
    setTimeout,
    clearTimeout,
    performance,
    WebAssembly,
    Float32Array,
    Int32Array,
    Uint8Array,
    Uint8ClampedArray,
  });
  ctx.self = ctx;
  vm.runInContext(`${src}\n;globalThis.faceapi = faceapi;`, ctx);
  const fa = ctx.faceapi as any;
  const tf = fa.tf;
  // neither browser nor Node: give tfjs the few platform services it asks for
  tf.setPlatform('vm-context', {
    fetch: () => Promise.reject(new Error('no network in the reference')),
    now: () => performance.now(),
    encode: (s: string) => new TextEncoder().encode(s),
    decode: (b: Uint8Array, encoding: string) => new TextDecoder(encoding).decode(b),
    isTypedArray: (a: unknown) => ArrayBuffer.isView(a) && !(a instanceof DataView),
    setTimeoutCustom: (f: () => void, ms: number) => setTimeout(f, ms),
  });
  if (!(await tf.setBackend('cpu'))) throw new Error("face-api's bundled tfjs has no CPU backend here");
  await tf.ready();
  // face-api asks its environment whether an input is a canvas, image or video; here none ever is
  class NotInThisRealm {}
  fa.env.setEnv({
    Canvas: NotInThisRealm,
    CanvasRenderingContext2D: NotInThisRealm,
    Image: NotInThisRealm,
    ImageData: NotInThisRealm,
    Video: NotInThisRealm,
    createCanvasElement: () => new NotInThisRealm(),
    createImageElement: () => new NotInThisRealm(),
    createVideoElement: () => new NotInThisRealm(),
    fetch: () => Promise.reject(new Error('no network in the reference')),
    readFile: () => Promise.reject(new Error('no files in the reference')),
  });
  const load = (net: any, name: string) => {
    const manifest = JSON.parse(readFileSync(join(dir, `${name}-weights_manifest.json`), 'utf8'));
    const map: Record<string, unknown> = {};
    for (const group of manifest) {
      const bytes = Buffer.concat(group.paths.map((p: string) => readFileSync(join(dir, p))));
      const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      Object.assign(map, tf.io.decodeWeights(ab, group.weights));
    }
    net.loadFromWeightMap(map);
  };
  load(fa.nets.ageGenderNet, 'age_gender_model');
  load(fa.nets.faceRecognitionNet, 'face_recognition_model');
  return {
    async ageGender(rgb, height, width) {
      const x = tf.tensor3d(rgb, [height, width, 3], 'int32');
      const r = await fa.nets.ageGenderNet.predictAgeAndGender(x);
      x.dispose();
      return { age: r.age, male: r.gender === 'male' ? r.genderProbability : 1 - r.genderProbability };
    },
    async descriptor(rgb, height, width) {
      const x = tf.tensor3d(rgb, [height, width, 3], 'int32');
      const d = await fa.nets.faceRecognitionNet.computeFaceDescriptor(x);
      x.dispose();
      return Float32Array.from(d);
    },
  };
}
