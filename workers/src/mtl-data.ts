#!/usr/bin/env node
// `mtl-data`: dataset preparation. Subcommands live in @mtlface/data; this file only wires them.
import { Command } from 'commander';

const program = new Command('mtl-data').description('Prepare MTLFace datasets');
await program.parseAsync(process.argv);
