// Module resolve hook (registered by bin/typescript.mjs after tsx): an import
// of one of the program's TypeScript sources from a variant file resolves to
// its compiled module in dist/, the copy the running program uses.
import { existsSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

let root;
let dist;
const COMPILED = ['src', 'models', 'properties', 'workers'];

export function initialize(data) {
  root = data.root;
  dist = data.dist;
}

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (!r.url.startsWith('file:') || !/\.m?ts$/.test(r.url)) return r;
  const rel = relative(root, fileURLToPath(r.url));
  // A variant file is an ES module (import/export, a default export) wherever
  // it lives: outside a "type": "module" package tsx would make it CommonJS,
  // whose require() of the compiled ES modules Node refuses.
  if (!COMPILED.includes(rel.split(sep)[0])) return r.format === 'commonjs' ? { ...r, format: 'module' } : r;
  const js = join(dist, rel.replace(/\.m?ts$/, '.js'));
  return existsSync(js) ? { url: pathToFileURL(js).href, format: 'module', shortCircuit: true } : r;
}
