import * as tf from '@tensorflow/tfjs-core';

/**
 * How a tensor is laid out in the reference PyTorch state dict relative to ours.
 * `conv`: PyTorch OIHW ↔ our HWIO. `same`: identical (vectors, linear weights kept as [out, in]).
 */
export type TorchLayout = 'same' | 'conv';

interface Slot {
  variable: tf.Variable;
  layout: TorchLayout;
}

export interface StateEntry {
  tensor: tf.Variable;
  layout: TorchLayout;
  kind: 'parameter' | 'buffer';
}

export interface LoadStateDictOptions {
  /** Require exactly the module's names (default true). With false, missing names keep their values. */
  strict?: boolean;
}

/**
 * A PyTorch-style module: parameters and buffers are tfjs Variables named by dotted paths that
 * match the reference state dict (`block1.0.res_layer.1.weight`). The module owns its variables:
 * `dispose()` frees them.
 */
export class Module {
  training = true;
  readonly #params = new Map<string, Slot>();
  readonly #buffers = new Map<string, Slot>();
  readonly #children = new Map<string, Module>();

  /** Registers a trainable parameter; the module takes ownership of `init`. */
  protected addParameter(name: string, init: tf.Tensor, layout: TorchLayout = 'same'): tf.Variable {
    this.#checkName(name);
    const variable = tf.variable(init, true);
    init.dispose();
    this.#params.set(name, { variable, layout });
    return variable;
  }

  /** Registers a non-trainable buffer (running statistics, spectral-norm vectors, masks). */
  protected addBuffer(name: string, init: tf.Tensor, layout: TorchLayout = 'same'): tf.Variable {
    this.#checkName(name);
    const variable = tf.variable(init, false);
    init.dispose();
    this.#buffers.set(name, { variable, layout });
    return variable;
  }

  protected addModule<M extends Module>(name: string, module: M): M {
    this.#checkName(name);
    this.#children.set(name, module);
    return module;
  }

  #checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new Error(`invalid module member name '${name}'`);
    if (this.#params.has(name) || this.#buffers.has(name) || this.#children.has(name)) {
      throw new Error(`module member '${name}' registered twice`);
    }
  }

  /** Direct children in registration order. */
  namedChildren(): Array<[string, Module]> {
    return [...this.#children];
  }

  /** Every module in the tree (this one first), with dotted names. */
  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [[prefix, this]];
    for (const [name, child] of this.#children) out.push(...child.namedModules(join(prefix, name)));
    return out;
  }

  namedParameters(prefix = ''): Array<[string, tf.Variable]> {
    return this.namedModules(prefix).flatMap(([p, m]) =>
      [...m.#params].map(([n, s]): [string, tf.Variable] => [join(p, n), s.variable]),
    );
  }

  parameters(): tf.Variable[] {
    return this.namedParameters().map(([, v]) => v);
  }

  namedBuffers(prefix = ''): Array<[string, tf.Variable]> {
    return this.namedModules(prefix).flatMap(([p, m]) =>
      [...m.#buffers].map(([n, s]): [string, tf.Variable] => [join(p, n), s.variable]),
    );
  }

  buffers(): tf.Variable[] {
    return this.namedBuffers().map(([, v]) => v);
  }

  /** Number of scalar parameters (buffers excluded), as PyTorch's `sum(p.numel())`. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /**
   * The state dict in PyTorch order (per module: parameters, then buffers, then children).
   * The values are the live variables themselves: read them, do not dispose them.
   */
  stateEntries(prefix = ''): Map<string, StateEntry> {
    const out = new Map<string, StateEntry>();
    for (const [p, m] of this.namedModules(prefix)) {
      for (const [n, s] of m.#params)
        out.set(join(p, n), { tensor: s.variable, layout: s.layout, kind: 'parameter' });
      for (const [n, s] of m.#buffers)
        out.set(join(p, n), { tensor: s.variable, layout: s.layout, kind: 'buffer' });
    }
    return out;
  }

  /** name → live variable (parameters and buffers). Do not dispose the values. */
  stateDict(prefix = ''): Map<string, tf.Variable> {
    return new Map([...this.stateEntries(prefix)].map(([n, e]) => [n, e.tensor]));
  }

  /**
   * Copies `state` (our layout) into the variables. Every name, shape and dtype is checked before
   * anything is assigned, so a failing load changes nothing; the error lists every problem by name.
   * The caller keeps ownership of the given tensors.
   */
  loadStateDict(state: Map<string, tf.Tensor>, options: LoadStateDictOptions = {}): void {
    const strict = options.strict ?? true;
    const own = this.stateEntries();
    const problems: string[] = [];
    for (const [name, t] of state) {
      const entry = own.get(name);
      if (!entry) {
        problems.push(`unexpected tensor '${name}'`);
        continue;
      }
      if (!sameShape(entry.tensor.shape, t.shape)) {
        problems.push(`tensor '${name}' has shape [${t.shape}], expected [${entry.tensor.shape}]`);
      }
    }
    if (strict)
      for (const name of own.keys()) if (!state.has(name)) problems.push(`missing tensor '${name}'`);
    if (problems.length > 0)
      throw new Error(`loadStateDict: ${problems.length} problem(s): ${problems.join('; ')}`);
    for (const [name, t] of state) {
      const v = own.get(name)!.tensor;
      tf.tidy(() => v.assign(t.dtype === v.dtype ? t : tf.cast(t, v.dtype)));
    }
  }

  /** Sets training mode on this module and every descendant (batch statistics, dropout, power iteration). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Frees every parameter and buffer of the tree. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const s of m.#params.values()) s.variable.dispose();
      for (const s of m.#buffers.values()) s.variable.dispose();
    }
  }
}

/** A module with a single-tensor forward, usable in a `Sequential`. */
export abstract class Layer extends Module {
  abstract forward(x: tf.Tensor): tf.Tensor;
  /**
   * `next.forward(this.forward(x))` computed at once when this layer can fuse with `next` (the
   * training-mode BatchNorm → PReLU pair on `native`), else null: {@link Sequential} then runs both.
   */
  forwardWithNext(x: tf.Tensor, next: Layer): tf.Tensor | null {
    void x;
    void next;
    return null;
  }
}

/** Children named 0, 1, 2, ... applied in order (PyTorch `nn.Sequential`). */
export class Sequential extends Layer {
  readonly layers: Layer[];
  constructor(layers: Layer[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.addModule(String(i), l));
  }
  forward(x: tf.Tensor): tf.Tensor {
    let y = x;
    for (let i = 0; i < this.layers.length; i++) {
      const next = this.layers[i + 1];
      const fused = next ? this.layers[i]!.forwardWithNext(y, next) : null;
      if (fused) {
        y = fused;
        i++;
      } else {
        y = this.layers[i]!.forward(y);
      }
    }
    return y;
  }
}

function join(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Children named 0, 1, 2, ... without a forward of their own (PyTorch `nn.ModuleList`). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.addModule(String(i), m));
  }
}
