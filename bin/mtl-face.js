#!/usr/bin/env node
// Entry point of `mtl-face`; the TypeScript build (`npm run build`, run by `npm ci`) produces workers/dist/mtl-face.js.
import('../workers/dist/mtl-face.js').catch((err) => {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('workers/dist/mtl-face.js')) {
    console.error('mtl-face: workers/dist/mtl-face.js is missing; run `npm run build` first.');
    process.exit(1);
  }
  throw err;
});
