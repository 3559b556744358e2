// `mmcheck bench` (`npm run bench`): fixed configurations explored in this
// thread, reporting generated and distinct states per second, bytes per
// visited state and peak memory. A measurement, not a test: run it on an
// otherwise idle machine and compare runs on the same machine.
import { setAutoFreeze } from 'immer';
import { explore } from '../engine/explorer.ts';
import { createMmModel, type Bounds } from '../../models/mm/model.ts';
import { resolveKernel } from '../../models/variants/registry.ts';
import { EXIT, UsageError, num, out } from './common.ts';

export interface BenchConfig {
  name: string;
  model: string;
  bounds: Partial<Bounds>;
  depth: number;
}

export const BENCH_CONFIGS: readonly BenchConfig[] = [
  { name: 'default', model: 'mainline', bounds: {}, depth: 4 },
  { name: 'deep', model: 'mainline', bounds: { procs: 2, pages: 4, maxLen: 2 }, depth: 5 },
  { name: 'fork-heavy', model: 'mainline', bounds: { procs: 3, pages: 2, maxLen: 1, ops: ['mmap', 'fault', 'fork', 'munmap', 'exit'] }, depth: 7 },
  { name: 'enomem', model: 'mainline', bounds: { procs: 2, pages: 3, maxLen: 2, enomem: 1 }, depth: 4 },
];

export interface BenchRow {
  name: string;
  generated: number;
  distinct: number;
  seconds: number;
  generatedPerSec: number;
  distinctPerSec: number;
  bytesPerState: number;
  peakRssMb: number;
}

export function runBench(c: BenchConfig): BenchRow {
  setAutoFreeze(false);
  const model = createMmModel({ name: c.model, kernel: resolveKernel(c.model), bounds: c.bounds });
  const r = explore(model, { depth: c.depth, stopAtFirst: false });
  const seconds = r.elapsedMs / 1000;
  return {
    name: c.name,
    generated: r.generated,
    distinct: r.distinct,
    seconds,
    generatedPerSec: r.generated / seconds,
    distinctPerSec: r.distinct / seconds,
    bytesPerState: r.visitedBytesPerState,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

export function cmdBench(o: { only?: string; json?: boolean }): number {
  const configs = o.only === undefined ? BENCH_CONFIGS : BENCH_CONFIGS.filter((c) => c.name === o.only);
  if (configs.length === 0) throw new UsageError(`no benchmark "${o.only}" (${BENCH_CONFIGS.map((c) => c.name).join(', ')})`);
  const rows: BenchRow[] = [];
  if (!o.json) out(`${'config'.padEnd(12)} ${'generated'.padStart(10)} ${'distinct'.padStart(9)} ${'seconds'.padStart(8)} ${'gen/s'.padStart(9)} ${'distinct/s'.padStart(10)} ${'B/state'.padStart(8)} ${'peak RSS MB'.padStart(11)}`);
  for (const c of configs) {
    const r = runBench(c);
    rows.push(r);
    if (!o.json)
      out(
        `${r.name.padEnd(12)} ${num(r.generated).padStart(10)} ${num(r.distinct).padStart(9)} ${r.seconds.toFixed(1).padStart(8)} ${num(r.generatedPerSec).padStart(9)} ${num(r.distinctPerSec).padStart(10)} ${r.bytesPerState.toFixed(1).padStart(8)} ${num(r.peakRssMb).padStart(11)}`,
      );
  }
  if (o.json) out(JSON.stringify(rows, null, 2));
  return EXIT.ok;
}
