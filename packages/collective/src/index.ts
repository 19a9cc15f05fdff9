export {
  StoreServer,
  StoreClient,
  STORE_MAX_MESSAGE_BYTES,
  type StoreServerOptions,
  type StoreClientOptions,
} from './store/index.js';
export { initProcessGroup, optionsFromEnv, type ProcessGroupOptions } from './group/init.js';
export { routeAddressTo } from './group/nodeAddress.js';
export {
  ProcessGroup,
  type ReduceOptions,
  type ProcessGroupTuning,
  type Wire,
} from './group/processGroup.js';
export { CollectiveError } from './group/errors.js';
export type { Transport, Message } from './transport/types.js';
export { PeerError } from './transport/types.js';
export { ZmqTransport } from './transport/zmqTransport.js';
export { NetTransport } from './transport/netTransport.js';
export type { TransportKind, PeerAddress } from './transport/base.js';
export {
  f32BitsToF16,
  f32BitsToBf16,
  F16_TO_F32,
  encodeF16,
  decodeF16,
  encodeBf16,
  decodeBf16,
} from './wire/half.js';
/** Which element kernels the wires run on: 'native' (the addon), 'wasm-simd' or 'js'. */
export { KERNELS } from './wire/codec.js';
export { nativeAddonMissing } from './native/addon.js';
