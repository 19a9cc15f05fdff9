import { Rng, hash32 } from '../rng.js';

/** Persistent traits of one synthetic identity (what stays the same from age 1 to 80). */
export interface IdentityTraits {
  /** 1 male, 0 female. */
  gender: number;
  /** Face proportions (multipliers around 1). */
  faceWidth: number;
  faceLength: number;
  /** Jaw half-width as a fraction of the cheek half-width (square ↔ pointed). */
  jawWidth: number;
  chinWidth: number;
  cheekY: number;
  eyeSpacing: number;
  eyeSize: number;
  eyeHeight: number;
  /** Iris RGB. */
  eyeColor: [number, number, number];
  eyeTilt: number;
  browThickness: number;
  browAngle: number;
  browArch: number;
  browGap: number;
  noseLength: number;
  noseWidth: number;
  noseBridge: number;
  mouthWidth: number;
  lipThickness: number;
  mouthGap: number;
  smile: number;
  earSize: number;
  /** Skin RGB at age 25. */
  skin: [number, number, number];
  /** Position of the skin tone on the palette, 0 (lightest) … 6 (darkest): the "ethnicity" CALFW matches negatives on. */
  skinTone: number;
  /** Natural hair RGB. */
  hair: [number, number, number];
  /** 0 crew cut, 1 side part, 2 bob, 3 long, 4 curly, 5 bun/tied back. */
  hairStyle: number;
  hairVolume: number;
  /** Part / fringe offset (−1 left … 1 right). */
  hairPart: number;
  /** Age at which greying starts. */
  greyOnset: number;
  /** 0..1 how far the hairline recedes by 80 (mostly men). */
  recede: number;
  /** Men only: 0 none, 1 moustache, 2 full beard (from age ~18). */
  beard: number;
  /** A mole: position on the face or none. */
  mole: [number, number] | null;
  /** How strongly this person shows wrinkles and sagging. */
  ageingRate: number;
}

const SKINS: [number, number, number][] = [
  [250, 221, 196],
  [241, 194, 160],
  [224, 172, 130],
  [198, 140, 100],
  [160, 106, 72],
  [115, 74, 50],
  [86, 56, 38],
];
const HAIRS: [number, number, number][] = [
  [25, 20, 18],
  [55, 38, 28],
  [95, 64, 40],
  [140, 96, 58],
  [195, 160, 105],
  [150, 70, 38],
  [40, 32, 30],
];
const EYES: [number, number, number][] = [
  [70, 45, 30],
  [105, 70, 40],
  [60, 100, 140],
  [85, 120, 80],
  [120, 120, 130],
  [40, 30, 25],
];

function mix(a: [number, number, number], b: [number, number, number], t: number): [number, number, number] {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** Traits of identity `id` under `seed` (pure). Every trait is continuous or many-valued; none alone identifies. */
export function identityTraits(seed: number, id: number): IdentityTraits {
  const r = new Rng(hash32(seed, id, 0x1d));
  const gender = r.next() < 0.5 ? 1 : 0;
  const n = (sd: number): number => Math.max(-2.2, Math.min(2.2, r.normal())) * sd;
  const skinPos = r.uniform(0, SKINS.length - 1);
  const s0 = Math.floor(skinPos);
  const skin = mix(SKINS[s0] as [number, number, number], SKINS[Math.min(SKINS.length - 1, s0 + 1)] as [number, number, number], skinPos - s0);
  const hairBase = r.pick(HAIRS);
  const hair = mix(hairBase, r.pick(HAIRS), r.uniform(0, 0.4));
  const eye = mix(r.pick(EYES), r.pick(EYES), r.uniform(0, 0.5));
  const styles = gender === 1 ? [0, 0, 1, 1, 4, 2] : [2, 3, 3, 4, 5, 1];
  return {
    gender,
    faceWidth: 1 + n(0.06) + (gender === 1 ? 0.02 : -0.02),
    faceLength: 1 + n(0.06),
    jawWidth: 0.72 + n(0.07) + (gender === 1 ? 0.05 : -0.04),
    chinWidth: 7 + n(1.6),
    cheekY: n(2.5),
    eyeSpacing: 12.5 + n(1.1),
    eyeSize: 2.6 + n(0.3),
    eyeHeight: n(1.5),
    eyeColor: eye,
    eyeTilt: n(4),
    browThickness: (gender === 1 ? 2.2 : 1.5) + n(0.4),
    browAngle: n(7),
    browArch: 1.5 + n(1),
    browGap: 5.5 + n(0.8),
    noseLength: 1 + n(0.1),
    noseWidth: 4.6 + n(0.7) + (gender === 1 ? 0.3 : -0.2),
    noseBridge: n(1),
    mouthWidth: 8.5 + n(1.1),
    lipThickness: (gender === 1 ? 1.9 : 2.5) + n(0.4),
    mouthGap: 1 + n(0.1),
    smile: n(1.2),
    earSize: 1 + n(0.12),
    skin,
    skinTone: skinPos,
    hair,
    hairStyle: r.pick(styles),
    hairVolume: 1 + n(0.12),
    hairPart: r.uniform(-1, 1),
    greyOnset: 32 + r.uniform(0, 25),
    recede: gender === 1 ? Math.max(0, r.uniform(-0.3, 1)) : r.uniform(0, 0.15),
    beard: gender === 1 ? r.pick([0, 0, 0, 1, 2]) : 0,
    mole: r.next() < 0.3 ? [r.uniform(-20, 20), r.uniform(-5, 25)] : null,
    ageingRate: 1 + n(0.2),
  };
}
