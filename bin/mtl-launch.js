#!/usr/bin/env node
// Entry point of `mtl-launch`; the TypeScript build (`npm run build`, run by `npm ci`) produces launcher/dist/cli.js.
import('../launcher/dist/cli.js').catch((err) => {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('launcher/dist/cli.js')) {
    console.error('mtl-launch: launcher/dist/cli.js is missing; run `npm run build` first.');
    process.exit(1);
  }
  throw err;
});
