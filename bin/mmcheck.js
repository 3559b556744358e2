#!/usr/bin/env node
// Entry point. Runs the precompiled program in dist/ (scripts/build.mjs, run
// by npm at `npm ci`) when it matches the sources, else the TypeScript
// sources through tsx, which costs 1.5-3 s at every start (its loader runs
// on a hooks thread that every module goes through). Variant files written
// in TypeScript load either way: see bin/typescript.mjs.
import { compiledEntry } from './typescript.mjs';
import { applyV8Flags } from './v8-flags.mjs';

applyV8Flags();

const entry = compiledEntry('src/cli.js');
if (entry !== undefined) {
  if (process.env.MMCHECK_DEBUG) process.setSourceMapsEnabled(true);
  await import(entry);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
