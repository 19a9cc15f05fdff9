#!/usr/bin/env node
// Entry point of `mtl-doctor`; the TypeScript build (`npm run build`, run by `npm ci`) produces workers/dist/mtl-doctor.js.
import('../workers/dist/mtl-doctor.js').catch((err) => {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('workers/dist/mtl-doctor.js')) {
    console.error('mtl-doctor: workers/dist/mtl-doctor.js is missing; run `npm run build` first.');
    process.exit(1);
  }
  throw err;
});
