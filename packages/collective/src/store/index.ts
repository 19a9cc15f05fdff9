export { StoreServer, type StoreServerOptions } from './server.js';
export { StoreClient, type StoreClientOptions } from './client.js';
export { STORE_MAX_MESSAGE_BYTES } from './protocol.js';
