#!/usr/bin/env node
// `mtl-launch`: see launcher/README.md.
console.error('mtl-launch: not implemented yet');
process.exit(1);
