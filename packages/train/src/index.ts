export * from './config.js';
export * from './schedule.js';
export * from './loss-scaler.js';
export * from './optim.js';
export * from './weight-decay.js';
export * from './grad-sync.js';
export * from './checkpoint.js';
