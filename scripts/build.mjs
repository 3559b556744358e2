#!/usr/bin/env node
// Precompile the TypeScript sources to dist/ (npm's `prepare`: runs at
// `npm ci` and `npm install`; also `npm run build`). Without it every start
// of the CLI spent 1.5-3 s in tsx: its loader runs on a separate hooks
// thread and every module of the program went through it. The compiled tree
// mirrors the sources (dist/src, dist/models, dist/properties, dist/workers)
// so that relative paths computed from import.meta.url still hold, and
// dist/manifest.json records each source's size and mtime: bin/mmcheck.js
// uses dist/ only when every source still matches, and the sources through
// tsx otherwise, so an edited tree never runs stale code.
let build;
try {
  ({ build } = await import('esbuild'));
} catch (e) {
  // Not fatal to an install: bin/mmcheck.js runs the sources through tsx without dist/.
  console.warn(`mmcheck: not compiling to dist/ (${e.message.split('\n')[0]}); the CLI will run the sources through tsx, 1.5-3 s slower to start`);
  process.exit(0);
}
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIRS = ['src', 'models', 'properties', 'workers'];
const DIST = join(ROOT, 'dist');

function sources(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const files = DIRS.flatMap((d) => sources(join(ROOT, d))).sort();
// Concurrent builds (two `npm ci`s, a test beside a build) must not see half
// a tree: build beside dist/ and swap it in with renames.
const tmp = `${DIST}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
await build({
  entryPoints: files,
  outdir: tmp,
  outbase: ROOT,
  outExtension: { '.js': '.js' },
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // One output file per source: every import stays an import, with a
  // relative .ts specifier turned into the compiled .js next to it.
  bundle: true,
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [
    {
      name: 'keep-imports',
      setup(b) {
        b.onResolve({ filter: /^\.\.?\// }, (a) => {
          if (a.kind === 'entry-point') return undefined;
          return { path: a.path.replace(/\.m?ts$/, '.js'), external: true };
        });
      },
    },
  ],
});
// The worker entries (workers/<name>.mjs registers tsx, then loads
// <name>-task.ts) and the bin path that other modules compute from import.meta.url.
mkdirSync(join(tmp, 'workers'), { recursive: true });
for (const entry of readdirSync(join(ROOT, 'workers')).filter((f) => f.endsWith('.mjs'))) {
  const name = entry.slice(0, -'.mjs'.length);
  writeFileSync(join(tmp, 'workers', entry), `// Compiled: no tsx needed (workers/${entry} registers it for the sources).\nexport { default } from './${name}-task.js';\n`);
}
mkdirSync(join(tmp, 'bin'), { recursive: true });
writeFileSync(join(tmp, 'bin', 'mmcheck.js'), "import '../../bin/mmcheck.js';\n");
const manifest = {};
for (const f of files) {
  const s = statSync(f);
  manifest[relative(ROOT, f)] = [s.size, s.mtimeMs];
}
writeFileSync(join(tmp, 'manifest.json'), JSON.stringify({ files: manifest }));
const old = `${DIST}.old-${process.pid}`;
try {
  renameSync(DIST, old);
} catch {}
renameSync(tmp, DIST);
rmSync(old, { recursive: true, force: true });
