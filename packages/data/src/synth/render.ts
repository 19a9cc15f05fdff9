import type { Rng } from '../rng.js';
import type { IdentityTraits } from './traits.js';

type Rgb = [number, number, number];

const f = (x: number): string => (Math.round(x * 100) / 100).toString();
const clamp = (x: number, lo = 0, hi = 1): number => Math.max(lo, Math.min(hi, x));
const lerp = (a: number, b: number, t: number): number => a + (b - a) * t;
const smooth = (t: number): number => {
  const c = clamp(t);
  return c * c * (3 - 2 * c);
};
const rgb = (c: Rgb): string => `rgb(${c.map((v) => Math.round(clamp(v, 0, 255))).join(',')})`;
const mix = (a: Rgb, b: Rgb, t: number): Rgb => [lerp(a[0], b[0], t), lerp(a[1], b[1], t), lerp(a[2], b[2], t)];
const scale = (a: Rgb, k: number): Rgb => [a[0] * k, a[1] * k, a[2] * k];

/** Per-image nuisances (pose, framing, light, background, clothing, encoder). */
export interface Nuisance {
  yaw: number;
  roll: number;
  scale: number;
  dx: number;
  dy: number;
  lightAngle: number;
  lightStrength: number;
  exposure: number;
  background: [Rgb, Rgb];
  clothing: Rgb;
  jpegQuality: number;
  expression: number;
}

export function drawNuisance(rng: Rng): Nuisance {
  const bg = (): Rgb => [rng.uniform(30, 230), rng.uniform(30, 230), rng.uniform(30, 230)];
  return {
    yaw: rng.uniform(-0.3, 0.3),
    roll: rng.uniform(-7, 7),
    scale: rng.uniform(0.92, 1.06),
    dx: rng.uniform(-3.5, 3.5),
    dy: rng.uniform(-3.5, 3.5),
    lightAngle: rng.uniform(0, 360),
    lightStrength: rng.uniform(0.05, 0.3),
    exposure: rng.uniform(0.85, 1.12),
    background: [bg(), bg()],
    clothing: [rng.uniform(20, 220), rng.uniform(20, 220), rng.uniform(20, 220)],
    jpegQuality: Math.round(rng.uniform(70, 95)),
    expression: rng.uniform(-1, 1),
  };
}

/**
 * How the skin cues of ageing are drawn. 'demo' (the default, the 32 px demo set, byte-identical to
 * before the option existed): strokes 0.5–0.7 units wide in the 100-unit face, i.e. 0.16–0.22 px at
 * 32 px, below what any network can see. 'visible' (the 64 px benchmark): the same cues, with the same
 * onset and progression with age, drawn at least MIN_CUE_PX wide and as dark as a fold's shadow.
 * What they stand for: the cues are the static (at-rest) wrinkles and
 * folds of the Glogau photo-ageing scale (Glogau RG, "Aesthetic and anatomic analysis of the aging
 * skin", Semin Cutan Med Surg 1996;15:134–138 — type I no wrinkles, 20s–30s; II wrinkles in motion,
 * late 30s–40s; III wrinkles at rest, 50s+; IV only wrinkles, 60s+) and the deepening nasolabial fold
 * and jowl of the sagging face (Coleman S, Grover R, "The anatomy of the aging face: volume loss and
 * changes in 3-dimensional topography", Aesthet Surg J 2006;26:S4–S9). In a photograph a fold at rest
 * is the shadow of its crease, one to a few millimetres wide; a 64 px crop of a ~14 cm face is ~3.5 mm per
 * pixel, so the crease darkens the pixels it crosses by a fraction of its shadow's depth — drawn here as a
 * 1 px line, skin × 0.45, at the cue's age-dependent opacity (e.g. ~30 % darker at 60), the same order.
 * Solar lentigines (age spots) become common after 50 (Bastiaens M et al., "Solar lentigines are strongly
 * related to sun exposure in contrast to ephelides", Pigment Cell Res 2004;17:225–229) and are a few
 * millimetres to 2 cm across, so they too get at least a pixel.
 */
export type AgeCues = 'demo' | 'visible';

/** 'visible' cues: the narrowest skin line or spot, in pixels of the rendered image. */
export const MIN_CUE_PX = 1;

/**
 * SVG of identity `t` at `age` (1–80) under nuisance `nz`. Coordinates: the face lives in
 * [-50, 50]², eyes near y = 0 for adults (aligned-crop framing as in face datasets).
 * `rng` adds per-image detail (wrinkle jitter, age spots) so no two images are pixel-identical.
 */
export function renderFaceSvg(t: IdentityTraits, age: number, nz: Nuisance, rng: Rng, size: number, cues: AgeCues = 'demo'): string {
  // 'visible': the skin cues (lines, folds, spots) drawn as the shading a deep wrinkle casts in a photo
  // of this size, at least MIN_CUE_PX wide; 'demo': the original strokes (the demo's set, unchanged).
  const minUnits = cues === 'visible' ? (MIN_CUE_PX * 100) / size : 0;
  const sw = (units: number): number => Math.max(units, minUnits);
  const grow = smooth((age - 1) / 17); // 0 infant → 1 adult proportions
  const old = clamp(((age - 28) / 52) * t.ageingRate, 0, 1.2); // wrinkles and folds
  const sag = smooth((age - 40) / 40) * t.ageingRate; // sagging, jowls
  const grey = smooth((age - t.greyOnset) / 28);
  const hairGrowth = 0.3 + 0.7 * smooth((age - 0.5) / 5);
  const recede = t.recede * smooth((age - 22) / 45);

  // Skin: children pinker and lighter, old skin duller and a little darker.
  let skin: Rgb = t.skin;
  skin = mix(skin, [skin[0] + 22, skin[1] + 10, skin[2] + 12], (1 - grow) * 0.9);
  skin = mix(skin, scale([skin[0] * 1.02, skin[1] * 0.95, skin[2] * 0.82], 0.84), clamp(old) * 0.8);
  skin = scale(skin, nz.exposure);
  const shade = scale(skin, 0.72);
  // A crease's shadow: darker than the 'demo' strokes, as a fold at rest is a band, not a hairline.
  const line = scale(skin, cues === 'visible' ? 0.45 : 0.6);
  const hair: Rgb = scale(mix(mix(t.hair, [220, 210, 180], (1 - hairGrowth) * 0.25), [212, 212, 208], grey), nz.exposure);

  // Geometry.
  const yTop = -47;
  const yChin = lerp(21, 35, grow) * t.faceLength + sag * 2.5;
  const cw = 31 * t.faceWidth * lerp(1.05, 1, grow);
  const yCheek = lerp(4, 2, grow) + t.cheekY;
  const jwFrac = lerp(0.9, t.jawWidth, grow);
  const jw = cw * jwFrac + sag * 2.8;
  const yJaw = lerp(yCheek + 10, yChin - 9, grow) + sag * 2;
  const chw = t.chinWidth * lerp(1.4, 1, grow) + sag * 1.5;
  const yEye = lerp(7, 0, grow) + t.eyeHeight;
  const es = t.eyeSpacing * lerp(0.88, 1, grow);
  const er = t.eyeSize * lerp(1.3, 1, grow);
  const noseLen = lerp(7, 13, grow) * t.noseLength + sag * 1.2;
  const yNose = yEye + noseLen;
  const nw = t.noseWidth * lerp(0.72, 1, grow) + sag * 0.6;
  const yMouth = yNose + lerp(4.5, 7.5, grow) * t.mouthGap + sag * 0.8;
  const mw = t.mouthWidth * lerp(0.7, 1, grow);
  const lip = t.lipThickness * lerp(0.85, 1, grow) * (1 - 0.35 * clamp(old));
  const yBrow = yEye - t.browGap * lerp(0.9, 1, grow) + sag * 0.6;
  const brow = t.browThickness * lerp(0.35, 1, grow) * (1 - 0.2 * grey);
  const ox = nz.yaw * 9; // features shift with yaw; nose moves most
  const lidDroop = clamp(sag * 0.35 + 0.05);

  const parts: string[] = [];
  const [bg0, bg1] = nz.background;
  parts.push(
    `<defs><linearGradient id="bg" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${rgb(bg0)}"/><stop offset="1" stop-color="${rgb(bg1)}"/></linearGradient>`,
    `<radialGradient id="sk" cx="${f(0.5 + nz.yaw * 0.3)}" cy="0.45" r="0.62"><stop offset="0.55" stop-color="${rgb(skin)}"/><stop offset="1" stop-color="${rgb(scale(skin, 0.8))}"/></radialGradient>`,
    `<linearGradient id="lt" gradientTransform="rotate(${f(nz.lightAngle)} 0.5 0.5)"><stop offset="0" stop-color="#fff" stop-opacity="${f(nz.lightStrength)}"/><stop offset="1" stop-color="#000" stop-opacity="${f(nz.lightStrength)}"/></linearGradient></defs>`,
    `<rect x="-50" y="-50" width="100" height="100" fill="url(#bg)"/>`,
    `<g transform="translate(${f(nz.dx)} ${f(nz.dy)}) rotate(${f(nz.roll)}) scale(${f(nz.scale)})">`,
  );

  // Hair behind the head (longer styles).
  const hv = t.hairVolume * lerp(0.8, 1, hairGrowth);
  if (hairGrowth > 0.3 && (t.hairStyle === 2 || t.hairStyle === 3 || t.hairStyle === 4)) {
    const yBottom = t.hairStyle === 3 ? 60 : t.hairStyle === 2 ? yJaw + 4 : yCheek + 12;
    const w = (cw + 6) * hv;
    parts.push(
      `<path d="M${f(-w)} ${f(yBottom)} L${f(-w)} ${f(yTop + 18)} Q0 ${f(yTop - 14 * hv)} ${f(w)} ${f(yTop + 18)} L${f(w)} ${f(yBottom)} Z" fill="${rgb(scale(hair, 0.85))}"/>`,
    );
  }
  // Neck and shoulders.
  const neckW = lerp(9, 12, grow) * (t.gender === 1 ? 1.12 : 0.95);
  parts.push(
    `<path d="M${f(-neckW)} ${f(yJaw)} L${f(-neckW)} ${f(yChin + 12)} L${f(neckW)} ${f(yChin + 12)} L${f(neckW)} ${f(yJaw)} Z" fill="${rgb(shade)}"/>`,
    `<path d="M-55 60 L-55 ${f(yChin + 20)} Q0 ${f(yChin + 6)} 55 ${f(yChin + 20)} L55 60 Z" fill="${rgb(nz.clothing)}"/>`,
  );
  if (sag > 0.3) {
    parts.push(
      `<path d="M${f(-neckW + 2)} ${f(yChin + 4)} Q0 ${f(yChin + 7)} ${f(neckW - 2)} ${f(yChin + 4)}" stroke="${rgb(line)}" stroke-width="${f(sw(0.6))}" fill="none" opacity="${f(clamp(sag - 0.3))}"/>`,
    );
  }
  // Ears (they keep growing in old age).
  const ear = t.earSize * lerp(0.9, 1, grow) * (1 + 0.15 * sag);
  for (const s of [-1, 1]) {
    const ex = s * (cw - 1) + ox * 0.3 - s * Math.max(0, s * nz.yaw) * 6;
    parts.push(`<ellipse cx="${f(ex)}" cy="${f(yEye + 5)}" rx="${f(3.6 * ear)}" ry="${f(7 * ear)}" fill="${rgb(shade)}"/>`);
  }
  // Face outline: temples, cheekbones, jaw, chin.
  const tw = cw * 0.96;
  const L = (x: number): number => -x + ox * 0.25;
  const R = (x: number): number => x + ox * 0.25;
  parts.push(
    `<path d="M${f(ox * 0.25)} ${f(yTop)} C${f(R(tw * 0.7))} ${f(yTop)} ${f(R(cw))} ${f(yTop + 14)} ${f(R(cw))} ${f(yCheek)}` +
      ` C${f(R(cw))} ${f(yCheek + (yJaw - yCheek) * 0.6)} ${f(R(jw + 2))} ${f(yJaw - 3)} ${f(R(jw))} ${f(yJaw)}` +
      ` C${f(R(jw - 4))} ${f(yChin - 1)} ${f(R(chw + 3))} ${f(yChin)} ${f(ox * 0.35)} ${f(yChin)}` +
      ` C${f(L(chw + 3))} ${f(yChin)} ${f(L(jw - 4))} ${f(yChin - 1)} ${f(L(jw))} ${f(yJaw)}` +
      ` C${f(L(jw + 2))} ${f(yJaw - 3)} ${f(L(cw))} ${f(yCheek + (yJaw - yCheek) * 0.6)} ${f(L(cw))} ${f(yCheek)}` +
      ` C${f(L(cw))} ${f(yTop + 14)} ${f(L(tw * 0.7))} ${f(yTop)} ${f(ox * 0.25)} ${f(yTop)} Z" fill="url(#sk)"/>`,
  );
  // Children's cheeks.
  if (grow < 0.9) {
    for (const s of [-1, 1]) {
      parts.push(
        `<ellipse cx="${f(s * (es + 3) + ox)}" cy="${f(yNose + 1)}" rx="6" ry="4" fill="rgb(235,120,120)" opacity="${f((1 - grow) * 0.35)}"/>`,
      );
    }
  }
  // Wrinkles and folds.
  const w = (o: number): string => f(clamp(o));
  const hairline = lerp(yTop + 19, yTop + 6, recede) - (1 - hairGrowth) * 4;
  if (old > 0.05) {
    const n = 2 + Math.round(old * 2);
    for (let i = 0; i < n; i++) {
      const y = yBrow - 4 - ((yBrow - 4 - hairline - 2) * (i + 0.5)) / n + rng.uniform(-0.6, 0.6);
      const a = 12 + rng.uniform(-2, 3);
      parts.push(
        `<path d="M${f(-a + ox)} ${f(y)} Q${f(ox)} ${f(y - 1.5 + rng.uniform(-0.5, 0.5))} ${f(a + ox)} ${f(y)}" stroke="${rgb(line)}" stroke-width="${f(sw(0.7))}" fill="none" opacity="${w(old * 0.9)}"/>`,
      );
    }
  }
  const folds = smooth((age - 22) / 45) * t.ageingRate;
  if (folds > 0.02) {
    for (const s of [-1, 1]) {
      const x0 = s * (nw + 1.5) + ox;
      const x1 = s * (mw + 2.5 + sag * 1.5) + ox;
      parts.push(
        `<path d="M${f(x0)} ${f(yNose - 1)} Q${f(x1 + s * 1.5)} ${f(yNose + 3)} ${f(x1)} ${f(yMouth + 3 + sag * 3)}" stroke="${rgb(line)}" stroke-width="${f(sw(0.7 + sag * 0.5))}" fill="none" opacity="${w(folds * 0.85)}"/>`,
      );
      if (sag > 0.2) {
        parts.push(
          `<path d="M${f(s * (mw + 1) + ox)} ${f(yMouth + 1)} L${f(s * (mw + 2) + ox)} ${f(yMouth + 6 + sag * 2)}" stroke="${rgb(line)}" stroke-width="${f(sw(0.6))}" fill="none" opacity="${w(sag * 0.8)}"/>`,
        );
      }
      // Crow's feet.
      if (old > 0.25) {
        const cx = s * (es + er * 1.9) + ox;
        for (let k = -1; k <= 1; k++) {
          parts.push(
            `<path d="M${f(cx)} ${f(yEye + k * 1.2)} l${f(s * (2.5 + rng.uniform(0, 1)))} ${f(k * 1.6)}" stroke="${rgb(line)}" stroke-width="${f(sw(0.5))}" opacity="${w((old - 0.25) * 1.1)}"/>`,
          );
        }
      }
      // Bags under the eyes.
      if (old > 0.2) {
        parts.push(
          `<path d="M${f(s * es - er * 1.5 + ox)} ${f(yEye + er + 1)} Q${f(s * es + ox)} ${f(yEye + er + 3 + sag * 1.5)} ${f(s * es + er * 1.5 + ox)} ${f(yEye + er + 1)}" stroke="${rgb(line)}" stroke-width="${f(sw(0.6))}" fill="none" opacity="${w(old * 0.8)}"/>`,
        );
      }
    }
  }
  // Age spots.
  if (age > 55) {
    const count = Math.round(((age - 55) / 25) * 5 * t.ageingRate);
    for (let i = 0; i < count; i++) {
      parts.push(
        `<circle cx="${f(rng.uniform(-cw + 6, cw - 6) + ox)}" cy="${f(rng.uniform(hairline + 2, yChin - 6))}" r="${f(Math.max(rng.uniform(0.6, 1.3), minUnits / 2))}" fill="rgb(120,80,50)" opacity="${f(rng.uniform(0.2, 0.45))}"/>`,
      );
    }
  }
  // Eyes: whites, iris, pupil, upper lid (droops with age), far eye narrower with yaw.
  for (const s of [-1, 1]) {
    const cx = s * es + ox;
    const far = Math.max(0, -s * nz.yaw);
    const rx = er * 1.75 * (1 - far * 0.5);
    const ry = er * (1 - lidDroop * 0.45);
    const tilt = s * t.eyeTilt;
    parts.push(
      `<g transform="rotate(${f(tilt)} ${f(cx)} ${f(yEye)})">`,
      `<ellipse cx="${f(cx)}" cy="${f(yEye)}" rx="${f(rx)}" ry="${f(ry)}" fill="rgb(240,236,228)"/>`,
      `<circle cx="${f(cx + nz.yaw * 2)}" cy="${f(yEye)}" r="${f(er * 0.78)}" fill="${rgb(t.eyeColor)}"/>`,
      `<circle cx="${f(cx + nz.yaw * 2)}" cy="${f(yEye)}" r="${f(er * 0.36)}" fill="rgb(15,12,12)"/>`,
      `<path d="M${f(cx - rx - 0.5)} ${f(yEye)} Q${f(cx)} ${f(yEye - ry * 2.3)} ${f(cx + rx + 0.5)} ${f(yEye)} Q${f(cx)} ${f(yEye - ry * (1.1 - lidDroop))} ${f(cx - rx - 0.5)} ${f(yEye)} Z" fill="${rgb(shade)}"/>`,
      `<path d="M${f(cx - rx)} ${f(yEye)} Q${f(cx)} ${f(yEye - ry * 1.9)} ${f(cx + rx)} ${f(yEye)}" stroke="rgb(40,30,28)" stroke-width="${f(0.55 + (t.gender === 0 ? 0.35 : 0))}" fill="none"/>`,
      `</g>`,
    );
    // Brows: thin in infants, grey with the hair.
    const bx = cx;
    const bAngle = s * t.browAngle;
    parts.push(
      `<path d="M${f(bx - s * 5.5)} ${f(yBrow + 0.8)} Q${f(bx)} ${f(yBrow - t.browArch)} ${f(bx + s * 6)} ${f(yBrow + 1.2)}" stroke="${rgb(mix(hair, [90, 80, 70], 0.25))}" stroke-width="${f(brow)}" stroke-linecap="round" fill="none" transform="rotate(${f(bAngle)} ${f(bx)} ${f(yBrow)})"/>`,
    );
  }
  // Nose: bridge shading and nostrils, shifted most by yaw.
  const nx = nz.yaw * 12;
  parts.push(
    `<path d="M${f(nx * 0.6 - 1.2 + t.noseBridge * 0.5)} ${f(yEye + 2)} Q${f(nx - 2)} ${f(yNose - noseLen * 0.3)} ${f(nx - nw * 0.6)} ${f(yNose - 0.5)}" stroke="${rgb(shade)}" stroke-width="0.9" fill="none"/>`,
    `<path d="M${f(nx - nw)} ${f(yNose)} Q${f(nx)} ${f(yNose + 2.4 * lerp(0.7, 1, grow))} ${f(nx + nw)} ${f(yNose)}" stroke="${rgb(line)}" stroke-width="1" fill="none"/>`,
    `<ellipse cx="${f(nx - nw * 0.5)}" cy="${f(yNose)}" rx="${f(nw * 0.28)}" ry="0.8" fill="${rgb(scale(skin, 0.45))}"/>`,
    `<ellipse cx="${f(nx + nw * 0.5)}" cy="${f(yNose)}" rx="${f(nw * 0.28)}" ry="0.8" fill="${rgb(scale(skin, 0.45))}"/>`,
  );
  // Mouth: corners droop with age; the expression varies per image.
  const mx = ox * 1.05;
  const corner = t.smile * 0.8 + nz.expression * 1.2 - sag * 1.8;
  const lipColor = mix(skin, t.gender === 0 ? [190, 80, 90] : [170, 95, 90], lerp(0.55, 0.45, clamp(old)));
  parts.push(
    `<path d="M${f(mx - mw)} ${f(yMouth - corner)} Q${f(mx)} ${f(yMouth - lip * 1.4)} ${f(mx + mw)} ${f(yMouth - corner)} Q${f(mx)} ${f(yMouth + lip * 1.7)} ${f(mx - mw)} ${f(yMouth - corner)} Z" fill="${rgb(lipColor)}"/>`,
    `<path d="M${f(mx - mw)} ${f(yMouth - corner)} Q${f(mx)} ${f(yMouth + corner * 0.4)} ${f(mx + mw)} ${f(yMouth - corner)}" stroke="${rgb(scale(lipColor, 0.55))}" stroke-width="0.7" fill="none"/>`,
  );
  // Beard / moustache from late teens, greying with the hair.
  if (t.beard > 0 && age >= 17) {
    const density = smooth((age - 16) / 8) * 0.85;
    const bc = rgb(mix(hair, [230, 230, 225], grey * 0.3));
    parts.push(
      `<path d="M${f(mx - mw - 1.5)} ${f(yMouth - 2.2)} Q${f(mx)} ${f(yNose + 0.5)} ${f(mx + mw + 1.5)} ${f(yMouth - 2.2)} Q${f(mx)} ${f(yMouth - 3)} ${f(mx - mw - 1.5)} ${f(yMouth - 2.2)} Z" fill="${bc}" opacity="${f(density)}"/>`,
    );
    if (t.beard === 2) {
      parts.push(
        `<path d="M${f(L(jw))} ${f(yJaw - 6)} C${f(L(jw - 2))} ${f(yChin + 3)} ${f(R(jw - 2))} ${f(yChin + 3)} ${f(R(jw))} ${f(yJaw - 6)} L${f(R(jw - 4))} ${f(yJaw - 4)} Q${f(mx)} ${f(yMouth + 1)} ${f(L(jw - 4))} ${f(yJaw - 4)} Z" fill="${bc}" opacity="${f(density)}"/>`,
      );
    }
  }
  // Hair on top: hairline recedes, thins at the crown in old age.
  if (hairGrowth > 0.02) {
    const hw = (cw + 3) * hv;
    const ySide = t.hairStyle === 0 ? yEye - 6 : yEye - 2;
    // A cubic with both controls at c peaks at ySide + 0.75·(c − ySide): put the peak above the skull.
    const peak = yTop - 3 - 4 * hv;
    const topY = ySide + (peak - ySide) / 0.75;
    const part = t.hairPart * 6 + ox * 0.3;
    const crownOpacity = clamp(hairGrowth) * (1 - clamp((recede - 0.55) * 2.2));
    const fringe = t.hairStyle === 2 || t.hairStyle === 4 ? 5 : 0;
    parts.push(
      `<path d="M${f(L(hw))} ${f(ySide)} C${f(L(hw + 1))} ${f(topY)} ${f(R(hw + 1))} ${f(topY)} ${f(R(hw))} ${f(ySide)}` +
        ` L${f(R(cw - 2))} ${f(ySide)} Q${f(R(cw - 3))} ${f(hairline + 2 + fringe)} ${f(part)} ${f(hairline + fringe - 1)}` +
        ` Q${f(L(cw - 3))} ${f(hairline + 2 + fringe)} ${f(L(cw - 2))} ${f(ySide)} Z" fill="${rgb(hair)}" opacity="${f(crownOpacity)}"/>`,
    );
    if (crownOpacity < 0.9) {
      // Hair that stays on the sides when the top goes.
      for (const s of [-1, 1]) {
        const x = s * (cw - 1) + ox * 0.25;
        parts.push(
          `<path d="M${f(x)} ${f(ySide + 3)} L${f(x + s * 2)} ${f(yTop + 16)} L${f(x - s * 5)} ${f(yTop + 20)} L${f(x - s * 4)} ${f(ySide + 3)} Z" fill="${rgb(hair)}" opacity="${f(clamp(hairGrowth))}"/>`,
        );
      }
    }
    if (t.hairStyle === 4) {
      for (let i = 0; i < 9; i++) {
        const a = Math.PI * (0.05 + (0.9 * i) / 8);
        parts.push(
          `<circle cx="${f(-Math.cos(a) * hw + ox * 0.25)}" cy="${f(ySide - Math.sin(a) * (ySide - peak) * 0.95)}" r="${f(4.5 * hv)}" fill="${rgb(hair)}" opacity="${f(crownOpacity)}"/>`,
        );
      }
    }
    if (t.hairStyle === 5) {
      parts.push(`<circle cx="${f(ox * 0.2)}" cy="${f(peak + 1)}" r="6" fill="${rgb(scale(hair, 0.9))}" opacity="${f(crownOpacity)}"/>`);
    }
  }
  if (t.mole !== null) {
    parts.push(`<circle cx="${f(t.mole[0] * lerp(0.8, 1, grow) + ox)}" cy="${f(t.mole[1] * lerp(0.7, 1, grow) + yEye)}" r="0.9" fill="rgb(70,45,35)" opacity="0.8"/>`);
  }
  parts.push('</g>', `<rect x="-50" y="-50" width="100" height="100" fill="url(#lt)"/>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="-50 -50 100 100">${parts.join('')}</svg>`;
}
