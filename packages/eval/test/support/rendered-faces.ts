// Photos the tests make themselves: the synthetic set's rendered faces placed on a plain background at a
// known position and size, so detection and alignment are checked against where the face really is.
import sharp from 'sharp';
import { Rng, drawNuisance, hash32, identityTraits, renderFaceSvg } from '@mtlface/data';

/** Width of the face (cheek to cheek) as a fraction of the rendered tile, measured on the renderer's output. */
export const FACE_IN_TILE = 0.65;

export interface PlacedFace {
  /** face identity and age in the synthetic renderer */
  identity: number;
  age: number;
  /** centre, in fractions of the frame */
  cx: number;
  cy: number;
  /** face width as a fraction of the frame width */
  fraction: number;
}

/** One synthetic face as a PNG tile of side `size` (the renderer's own background included). */
export async function renderFace(seed: number, identity: number, age: number, size: number): Promise<Buffer> {
  const rng = new Rng(hash32(seed, identity, 0, 0x7e57));
  const svg = renderFaceSvg(identityTraits(seed, identity), age, drawNuisance(rng), rng, size);
  return sharp(Buffer.from(svg)).flatten({ background: '#000' }).png().toBuffer();
}

/** A `width`×`height` RGB photo with the given faces on a grey-green background (tiles may overhang). */
export async function composePhoto(
  width: number,
  height: number,
  faces: readonly PlacedFace[],
  seed = 0,
): Promise<{ data: Uint8Array; width: number; height: number }> {
  const margin = Math.max(width, height) * 2;
  const layers: sharp.OverlayOptions[] = [];
  for (const f of faces) {
    const tile = Math.max(8, Math.round((f.fraction * width) / FACE_IN_TILE));
    layers.push({
      input: await renderFace(seed, f.identity, f.age, tile),
      left: Math.round(margin + f.cx * width - tile / 2),
      top: Math.round(margin + f.cy * height - tile / 2),
    });
  }
  const big = await sharp({
    create: { width: width + 2 * margin, height: height + 2 * margin, channels: 3, background: '#7a8a70' },
  })
    .composite(layers)
    .removeAlpha()
    .raw()
    .toBuffer();
  const data = await sharp(big, {
    raw: { width: width + 2 * margin, height: height + 2 * margin, channels: 3 },
  })
    .extract({ left: margin, top: margin, width, height })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
}
