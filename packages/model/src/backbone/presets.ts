// The backbone zoo as a table (spec §2): the released depths and our small presets of the same
// design. No tfjs here, so that config validation can use the table without loading the networks.
export type UnitMode = 'ir' | 'ir_se';
export type Quad = readonly [number, number, number, number];

export interface BackboneShape {
  /** Units per stage. */
  units: Quad;
  /** Channels per stage (the reference: 64, 128, 256, 512; the stem has widths[0]). */
  widths: Quad;
  mode: UnitMode;
}

/** The released depth table plus our small presets of the same design. */
export const BACKBONE_PRESETS = {
  ir34: { units: [3, 4, 6, 3], widths: [64, 128, 256, 512], mode: 'ir' },
  ir50: { units: [3, 4, 14, 3], widths: [64, 128, 256, 512], mode: 'ir' },
  ir64: { units: [3, 4, 10, 3], widths: [64, 128, 256, 512], mode: 'ir' },
  ir101: { units: [3, 13, 30, 3], widths: [64, 128, 256, 512], mode: 'ir' },
  irse101: { units: [3, 13, 30, 3], widths: [64, 128, 256, 512], mode: 'ir_se' },
  /** One unit per stage at full width: a small model of the full design for FR/FAS tests. */
  'ir-tiny': { units: [1, 1, 1, 1], widths: [64, 128, 256, 512], mode: 'ir' },
  /** One unit per stage, narrow: the laptop demo (use a 32–64 px input). */
  demo: { units: [1, 1, 1, 1], widths: [16, 32, 64, 128], mode: 'ir' },
} as const satisfies Record<string, BackboneShape>;

export type BackboneArch = keyof typeof BACKBONE_PRESETS;

/** The preset names, for schemas and help texts. */
export const BACKBONE_ARCHS = Object.keys(BACKBONE_PRESETS) as BackboneArch[];
