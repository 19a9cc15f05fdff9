#!/usr/bin/env node
// `mtl-face`: inference with a trained checkpoint. Each subcommand lives in ./face/<name>.ts
// and exports `register(program)`; list it in COMMANDS.
import { Command } from 'commander';
import * as importTorch from './face/import-torch.js';
import * as exportTorch from './face/release-torch.js';
import * as embed from './face/embed.js';
import * as verify from './face/verify.js';
import * as evaluate from './face/eval.js';
import * as age from './face/age.js';
import * as align from './face/align.js';
import * as plot from './face/plot.js';
import { workersVersion } from './version.js';

interface FaceCommand {
  register(program: Command): void;
}
const COMMANDS: FaceCommand[] = [importTorch, exportTorch, embed, verify, evaluate, age, align, plot];

const program = new Command('mtl-face')
  .description('Embed, verify, evaluate and age faces with an MTLFace checkpoint')
  .version(workersVersion(), '--version');
for (const cmd of COMMANDS) cmd.register(program);
await program.parseAsync(process.argv);
