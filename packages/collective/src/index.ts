export {
  StoreServer,
  StoreClient,
  STORE_MAX_MESSAGE_BYTES,
  type StoreServerOptions,
  type StoreClientOptions,
} from './store/index.js';
