// Loading aligned face crops for inference: RGB, resized to the model's input side, scaled to [-1, 1].
import sharp from 'sharp';

/** One image as NHWC float32 values in [-1, 1] (`(v/255 − 0.5)/0.5`, as the training transform). */
export async function loadFace(path: string, size: number): Promise<Float32Array> {
  let data: Buffer;
  let info: sharp.OutputInfo;
  try {
    ({ data, info } = await sharp(path)
      .removeAlpha()
      .toColourspace('srgb')
      .resize(size, size, { fit: 'fill' })
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw new Error(`${path}: cannot read image (${(e as Error).message})`);
  }
  if (info.channels !== 3) throw new Error(`${path}: expected 3 colour channels, got ${info.channels}`);
  const out = new Float32Array(size * size * 3);
  for (let i = 0; i < out.length; i++) out[i] = data[i]! / 127.5 - 1;
  return out;
}
