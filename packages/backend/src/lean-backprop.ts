import * as tf from '@tensorflow/tfjs-core';

// tfjs's backward pass (`engine.gradients` → tape.ts `backpropagateGradients`) keeps every tensor it
// touches until the whole backward pass ends: the gradient of every activation (its map of accumulated
// gradients) and every tensor saved for a node's gradient (`node.saved`, freed in one loop at the end).
// So the backward pass's peak holds all activations' gradients on top of all saved activations,
// about twice what PyTorch's autograd holds: it frees a node's saved tensors and its output's gradient
// as soon as that node's backward has run.
//
// This does the same on tfjs's engine without changing a value: each tape node's gradient function
// is wrapped so that once every input gradient the walk asks of that node has been computed, the
// node's output gradients (each consumed by exactly this node: a tensor has one producer) and its
// saved tensors are disposed. Never disposed: the gradient of a tensor the caller asked for (an
// intermediate in `xs`), the caller's own `dy`, and anything while a tape is recording (higher-order
// gradients record the backward ops, which may read them). An input gradient that is one of the
// tensors about to go (a gradient function returning its dy or a saved tensor as is) is handed on
// as a clone, which shares the data (tfjs reference-counts it). A node's input gradients are computed
// together in one tf.tidy when the walk reaches it (the walk asks for each right after anyway), so
// the intermediates of eager gradient functions (tf.customGrad's) go then too, not at the walk's end.

interface TapeNode {
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  addTapeNode(...args: unknown[]): void;
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ): { value: tf.Tensor; grads: tf.Tensor[] };
  [INSTALLED]?: boolean;
}

/** One `engine.gradients` call in progress: what its walk must not dispose. */
interface Walk {
  xs: Set<number>;
  dy: tf.Tensor | undefined;
}

const INSTALLED = Symbol.for('mtlface.leanBackprop');

/**
 * Kernels whose tfjs gradient reads only the shapes of what it saves (Add, Sub: for the broadcast's
 * reduction axes; Reshape, Slice, PadV2, Sum, Mean: the input's shape; AddN: nothing) while saving
 * whole inputs: their saved
 * tensors are replaced by shape-only stand-ins when recorded. Applied only while the gradient
 * registered for the kernel is the one found at install (tfjs's), whose code was read for this.
 */
const SHAPE_ONLY_KERNELS = ['Add', 'Sub', 'Reshape', 'AddN', 'Slice', 'PadV2', 'Sum', 'Mean'];
const shapeOnly = new Map<string, unknown>();

/** What a shape-only gradient reads of a saved tensor; nothing to free. */
function shapeOf(t: tf.Tensor): tf.Tensor {
  const stub = { shape: t.shape, dtype: t.dtype, rank: t.rank, size: t.size, isDisposed: true, dispose() {} };
  return stub as unknown as tf.Tensor;
}
const walks: Walk[] = [];
let enabled = true;
const stats = { nodes: 0, disposed: 0 };

/** How many tensors the lean walk disposed early (for tests). */
export function leanBackpropStats(): { nodes: number; disposed: number } {
  return { ...stats };
}

/** Turns early disposal on or off (off: tfjs's own behaviour, for A/B measurements and tests). */
export function setLeanBackprop(on: boolean): void {
  enabled = on;
}

/**
 * Installs the early-freeing backward walk on tfjs's engine (idempotent; the engine is one object
 * shared by every copy of tfjs-core in the process). `MTL_LEAN_BACKPROP=0` leaves it off.
 */
export function installLeanBackprop(env: NodeJS.ProcessEnv = process.env): void {
  if (env.MTL_LEAN_BACKPROP === '0') enabled = false;
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine[INSTALLED]) return;
  engine[INSTALLED] = true;
  for (const kernel of SHAPE_ONLY_KERNELS) {
    const g = tf.getGradient(kernel)?.gradFunc;
    if (g) shapeOnly.set(kernel, g);
  }
  const addTapeNode = engine.addTapeNode.bind(engine);
  engine.addTapeNode = (...args: unknown[]) => {
    const [kernel, , , own, saved] = args as [string, unknown, unknown, unknown, tf.Tensor[] | undefined];
    const stock = shapeOnly.get(kernel);
    // `own` is null for a registered kernel (a tf.customGrad or clone passes its own function).
    if (enabled && own == null && stock && saved?.length && stock === tf.getGradient(kernel)?.gradFunc)
      for (let i = 0; i < saved.length; i++) {
        const t = saved[i]!;
        saved[i] = shapeOf(t);
        t.dispose();
      }
    addTapeNode(...args);
    const tape = engine.state.activeTape;
    const node = tape?.[tape.length - 1];
    if (node?.gradient) node.gradient = leanGradient(engine, node.gradient);
  };
  const gradients = engine.gradients.bind(engine);
  engine.gradients = (f, xs, dy, allowNoGradients) => {
    walks.push({ xs: new Set(xs.map((x) => x.id)), dy });
    try {
      return gradients(f, xs, dy, allowNoGradients);
    } finally {
      walks.pop();
    }
  };
}

function leanGradient(
  engine: EngineInternals,
  gradient: NonNullable<TapeNode['gradient']>,
): NonNullable<TapeNode['gradient']> {
  // Called by the walk as `node.gradient(dys)` on its pruned copy of the node: `this.inputs` holds
  // exactly the inputs whose gradients the walk will ask for, in the order it asks.
  return function (this: TapeNode, dys) {
    const walk = walks[walks.length - 1];
    if (!enabled || !walk || engine.state.gradientDepth !== 0) return gradient(dys);
    const inputs = Object.keys(this.inputs);
    const saved = this.saved ?? [];
    const outputs = this.outputs;
    // Every input gradient of the node in one scope: intermediates of gradient functions that compute
    // eagerly (tf.customGrad's run whole when the node is reached) go at its end, not the walk's.
    const names: string[] = [];
    const dxs = tf.tidy(() => {
      const fns = gradient(dys);
      const out: tf.Tensor[] = [];
      for (const name of inputs) {
        if (!(name in fns)) continue; // the walk reports it
        let dx = fns[name]!();
        if (dys.includes(dx) || saved.includes(dx) || out.includes(dx)) dx = dx.clone();
        names.push(name);
        out.push(dx);
      }
      return out;
    });
    release(walk, outputs, saved, dys, dxs);
    return Object.fromEntries(names.map((name, i) => [name, () => dxs[i]!]));
  };
}

function release(
  walk: Walk,
  outputs: tf.Tensor[],
  saved: tf.Tensor[],
  dys: (tf.Tensor | null)[],
  dxs: tf.Tensor[],
): void {
  stats.nodes++;
  const dispose = (t: tf.Tensor) => {
    if (t.isDisposed || t instanceof tf.Variable || dxs.includes(t)) return;
    t.dispose();
    stats.disposed++;
  };
  dys.forEach((dy, i) => {
    if (!dy || dy === walk.dy || walk.xs.has(outputs[i]!.id)) return;
    dispose(dy);
  });
  for (const t of saved) dispose(t);
}
