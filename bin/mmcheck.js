#!/usr/bin/env node
// Entry point. Runs the precompiled program in dist/ (scripts/build.mjs, run
// by npm at `npm ci`) when it matches the sources, else the TypeScript
// sources through tsx, which costs 1.5-3 s at every start (its loader runs
// on a hooks thread that every module goes through). Variant files written
// in TypeScript load either way: see bin/typescript.mjs.
import { setFlagsFromString } from 'node:v8';
import { compiledEntry } from './typescript.mjs';

// V8 tuning for the search, set before any of it is compiled; V8's flags
// are per process, so every worker thread of the pools runs under them
// (measured with `mmcheck bench`, see the README's performance section):
//  - a smaller cumulative inlining budget: TurboFan compiles each hot model
//    function once per thread, and on runs of seconds that compilation,
//    not the search, held the second core; the code it makes is as fast;
//  - scavenges on the thread that allocates: two workers on two cores
//    leave no core for the parallel scavenger's helper threads, which then
//    only contend with them.
// MMCHECK_V8_FLAGS replaces the list (empty: V8's defaults), for measuring.
// Only flags that are safe to change in a running process belong here
// (--single-threaded-gc, for one, aborts in the next full GC).
const V8_FLAGS = process.env.MMCHECK_V8_FLAGS ?? '--max-inlined-bytecode-size-cumulative=120 --no-parallel-scavenge';
for (const flag of V8_FLAGS.split(/\s+/)) if (flag !== '') setFlagsFromString(flag);

const entry = compiledEntry('src/cli.js');
if (entry !== undefined) {
  if (process.env.MMCHECK_DEBUG) process.setSourceMapsEnabled(true);
  await import(entry);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli.ts');
}
