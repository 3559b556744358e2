// Plain JavaScript so that node loads it without tsx. Decides whether the
// compiled tree in dist/ can be used, and registers TypeScript support on
// demand when the compiled program loads a variant file written in it.
import { readFileSync, statSync } from 'node:fs';
import { register as registerHooks } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');

/** dist/ (under root) exists and every source it was compiled from is unchanged (size and mtime). */
export function distFreshness(root, dist) {
  try {
    const { files } = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8'));
    const entries = Object.entries(files);
    if (entries.length === 0) return false;
    for (const [rel, [size, mtimeMs]] of entries) {
      const s = statSync(join(root, rel));
      if (s.size !== size || s.mtimeMs !== mtimeMs) return false;
    }
    return true;
  } catch {
    return false;
  }
}

let fresh;
/** This checkout's dist/ is usable (MMCHECK_NO_DIST=1 forces the sources). */
export function distIsFresh() {
  fresh ??= !process.env.MMCHECK_NO_DIST && distFreshness(ROOT, DIST);
  return fresh;
}

/** The URL of a compiled module (path relative to dist/), or undefined when dist/ is missing or stale. */
export function compiledEntry(rel) {
  return distIsFresh() ? pathToFileURL(join(DIST, rel)).href : undefined;
}

let registered;
/**
 * Make `import()` of .ts/.mts files work in this thread (the compiled program
 * loading a user's variant file). tsx transpiles them; a second hook sends
 * their imports of the model's sources (`../models/mm/state.ts`) to the
 * compiled modules the program already runs, so a variant and the program
 * share one copy of each module.
 */
export async function registerTypeScript() {
  registered ??= (async () => {
    const { register } = await import('tsx/esm/api');
    register();
    registerHooks('./dist-redirect.mjs', import.meta.url, { data: { root: ROOT, dist: DIST } });
  })();
  return registered;
}
