#!/usr/bin/env node
// Entry point of `mtl-data`; the TypeScript build (`npm run build`, run by `npm ci`) produces workers/dist/mtl-data.js.
import('../workers/dist/mtl-data.js').catch((err) => {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('workers/dist/mtl-data.js')) {
    console.error('mtl-data: workers/dist/mtl-data.js is missing; run `npm run build` first.');
    process.exit(1);
  }
  throw err;
});
