// Dynamic loss scaling with PyTorch GradScaler's dynamics. Compute stays float32 (tfjs has no
// float16 tensors); the scale protects the gradients while they travel on an f16/bf16 wire.

export interface LossScalerOptions {
  init?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
  enabled?: boolean;
}

export interface LossScalerState {
  scale: number;
  growthTracker: number;
}

export class LossScaler {
  private _scale: number;
  private growthTracker = 0;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly enabled: boolean;

  constructor(opts: LossScalerOptions = {}) {
    this.enabled = opts.enabled ?? true;
    this._scale = opts.init ?? 65536;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    if (!(this._scale > 0)) throw new RangeError(`LossScaler: init scale must be > 0, got ${this._scale}`);
  }

  /** The factor the loss is multiplied by (1 when disabled). */
  get scale(): number {
    return this.enabled ? this._scale : 1;
  }

  /**
   * Records the outcome of one step (after the all-reduce, so every rank passes the same flag).
   * Returns true when the step must be skipped.
   */
  update(foundInf: boolean): boolean {
    if (!this.enabled) return foundInf;
    if (foundInf) {
      this._scale *= this.backoffFactor;
      this.growthTracker = 0;
      return true;
    }
    this.growthTracker += 1;
    if (this.growthTracker === this.growthInterval) {
      this._scale *= this.growthFactor;
      this.growthTracker = 0;
    }
    return false;
  }

  state(): LossScalerState {
    return { scale: this._scale, growthTracker: this.growthTracker };
  }

  load(state: LossScalerState): void {
    if (!(state.scale > 0) || !Number.isInteger(state.growthTracker) || state.growthTracker < 0) {
      throw new RangeError(`LossScaler.load: invalid state ${JSON.stringify(state)}`);
    }
    this._scale = state.scale;
    this.growthTracker = state.growthTracker;
  }
}
