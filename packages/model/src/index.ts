import { registerAllGradients } from '@mtlface/backend';

// tfjs-core alone registers no op gradients; every user of the model needs them for training.
registerAllGradients();

export * from './nn/module.js';
export * from './nn/init.js';
export * from './nn/conv.js';
export * from './nn/linear.js';
export * from './nn/batchnorm.js';
export * from './nn/native-kernels.js';
export { hostValues, TRAINING_KERNELS } from '@mtlface/backend';
export * from './nn/activations.js';
export * from './backbone/pooling.js';
export * from './backbone/attention.js';
export * from './backbone/units.js';
export * from './backbone/presets.js';
export * from './backbone/backbone.js';
export * from './heads/cosface.js';
export * from './heads/age-estimation.js';
export * from './heads/grl.js';
export * from './losses.js';
export * from './io/dtypes.js';
export * from './io/safetensors.js';
export * from './io/tensors.js';
export * from './nn/spectral-norm.js';
export * from './fas/router.js';
export * from './fas/upsample.js';
export * from './fas/aging-module.js';
export * from './fas/discriminator.js';
export * from './io/torch-file.js';
export * from './io/torch-import.js';
export * from './io/weights.js';
export * from './io/torch-save.js';
