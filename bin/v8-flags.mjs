// V8 tuning for the search, set by bin/mmcheck.js before any of it is
// compiled. V8's flags are per process, so every worker thread of the pools
// runs under them (measured with `mmcheck bench`, see the README's
// performance section):
//  - a smaller cumulative inlining budget: TurboFan compiles each hot model
//    function once per thread, and on runs of seconds that compilation,
//    not the search, held the second core; the code it makes is as fast;
//  - scavenges on the thread that allocates: two workers on two cores
//    leave no core for the parallel scavenger's helper threads, which then
//    only contend with them.
// MMCHECK_V8_FLAGS replaces the list (empty: V8's defaults), for measuring.
// Only flags that are safe to change in a running process belong here
// (--single-threaded-gc, for one, aborts in the next full GC).
import { execFileSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';

export const DEFAULT_V8_FLAGS = '--max-inlined-bytecode-size-cumulative=120 --no-parallel-scavenge';

/**
 * The flags of MMCHECK_V8_FLAGS that V8 does not know (it ignores them
 * silently), checked against `node --v8-options`: only when the variable is
 * set, so a normal start pays nothing.
 */
function unknownFlags(flags) {
  const known = new Set(
    execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /^\s+--([a-z0-9_-]+)/.exec(l)?.[1])
      .filter((n) => n !== undefined),
  );
  return flags.filter((f) => {
    const name = /^--(?:no-)?([a-z0-9_-]+)(?:=.*)?$/.exec(f)?.[1]?.replaceAll('_', '-');
    return name === undefined || !known.has(name);
  });
}

/** Set the search's V8 flags; a MMCHECK_V8_FLAGS that names a flag V8 does not have is bad input (exit 2). */
export function applyV8Flags() {
  const custom = process.env.MMCHECK_V8_FLAGS;
  const flags = (custom ?? DEFAULT_V8_FLAGS).split(/\s+/).filter((f) => f !== '');
  if (custom !== undefined) {
    const bad = unknownFlags(flags);
    if (bad.length > 0) {
      process.stderr.write(`mmcheck: MMCHECK_V8_FLAGS: V8 has no flag ${bad.map((f) => `"${f}"`).join(', ')} (see node --v8-options)\n`);
      process.exit(2);
    }
  }
  for (const flag of flags) setFlagsFromString(flag);
}
