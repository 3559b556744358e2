import { setAutoFreeze } from 'immer';
import { explore } from './src/engine/explorer.ts';
import { exploreParallel } from './src/engine/parallel.ts';
import { buildMmModel, mmModelSpec } from './src/cli/model-spec.ts';
setAutoFreeze(false);
const spec = { variant: 'mainline', bounds: JSON.parse(process.argv[2] ?? '{}') };
const depth = Number(process.argv[3] ?? 4);
const m = await buildMmModel(spec);
let t = performance.now();
if (process.argv[4] !== 'skip') { const a = explore(m, { depth, stopAtFirst: false });
console.log('explore', ((performance.now() - t)/1000).toFixed(2), a.generated, a.distinct, Math.round(a.generated / (performance.now() - t) * 1000)); }
for (const w of [1, 2]) {
  t = performance.now();
  const b = await exploreParallel(m, { depth, stopAtFirst: false, workers: w, spec: mmModelSpec(spec) });
  console.log(w, ((performance.now() - t)/1000).toFixed(2), b.generated, b.distinct, Math.round(b.generated / (performance.now() - t) * 1000));
}
