// `mmcheck bench` (`npm run bench`): fixed configurations, each explored
//   - by the parallel explorer with 1 and with 2 workers (generated and
//     distinct states per second, the 2-worker speed-up, bytes per visited
//     state in the fingerprint table, peak memory), and
//   - by a NAIVE baseline: immer states from model.next, no canonical
//     renaming, JSON.stringify(state) as the key of a Set<string>, plain
//     BFS (the properties are checked on each new state, as the explorer
//     does), with the ratio of its time to the 1-worker time.
// Times exclude starting the pool (its threads and the model built in each,
// 0.3-1 s, printed apart). A measurement, not a test: run it on an otherwise idle machine (it prints
// the load average; another process on a core halves what 2 workers can do)
// and compare runs on the same machine.
import { spawnSync } from 'node:child_process';
import { loadavg, availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setAutoFreeze } from 'immer';
import { checkProperties, type Model } from '../engine/model.ts';
import { exploreParallel } from '../engine/parallel.ts';
import type { Bounds } from '../../models/mm/model.ts';
import { buildMmModel, mmModelSpec, type MmSpec } from './model-spec.ts';
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
  // Four interchangeable processes: what process symmetry and canonical renaming save over the naive search.
  { name: 'symmetric', model: 'mainline', bounds: { procs: 4, pages: 1, maxLen: 1, ops: ['mmap', 'fault', 'fork', 'munmap', 'exit'] }, depth: 9 },
  // Lock granularity: syscalls split at their lock points, one rmap walker.
  { name: 'lock', model: 'mainline', bounds: { procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1 }, depth: 8 },
];

/** The naive baseline gives up after this long (its ratio is then a lower bound). */
const NAIVE_LIMIT_MS = 300_000;

export interface BenchRow {
  name: string;
  generated: number;
  distinct: number;
  /** Seconds to start the pool of 1 and of 2 workers (not in seconds1, seconds2). */
  startup1: number;
  startup2: number;
  /** Seconds of search with 1 and 2 workers, the pool started. */
  seconds1: number;
  seconds2: number;
  generatedPerSec1: number;
  distinctPerSec1: number;
  generatedPerSec2: number;
  distinctPerSec2: number;
  speedup2: number;
  /** Fingerprint-table bytes per visited state. */
  bytesPerState: number;
  peakRssMb: number;
  naiveSeconds: number;
  naiveDistinct: number;
  /** false when the baseline hit NAIVE_LIMIT_MS (then the ratio is a lower bound). */
  naiveFinished: boolean;
  naivePeakRssMb: number;
  /** Naive seconds / 1-worker seconds. */
  naiveRatio: number;
}

/** The naive baseline: plain BFS with JSON.stringify keys in a Set; returns seconds, distinct states, finished. */
export function naiveBfs<S, A>(model: Model<S, A>, depth: number, limitMs = NAIVE_LIMIT_MS): { seconds: number; distinct: number; generated: number; finished: boolean } {
  const t0 = performance.now();
  const root = model.initial();
  const seen = new Set<string>([JSON.stringify(root)]);
  checkProperties(model, root);
  let frontier: S[] = [root];
  let generated = 0;
  for (let d = 0; d < depth && frontier.length > 0; d++) {
    const next: S[] = [];
    for (const s of frontier) {
      for (const a of model.actions(s)) {
        const t = model.next(s, a);
        generated++;
        const key = JSON.stringify(t);
        if (seen.has(key)) continue;
        seen.add(key);
        checkProperties(model, t);
        next.push(t);
      }
      if (performance.now() - t0 > limitMs) return { seconds: (performance.now() - t0) / 1000, distinct: seen.size, generated, finished: false };
    }
    frontier = next;
  }
  return { seconds: (performance.now() - t0) / 1000, distinct: seen.size, generated, finished: true };
}

/** One measurement, in this process: a search with 1 or 2 workers, or the naive baseline. */
export type BenchPhase = '1' | '2' | 'naive';
export interface PhaseResult {
  generated: number;
  distinct: number;
  /** Search seconds (pool start-up excluded). */
  seconds: number;
  startup: number;
  bytesPerState: number;
  /** false: the naive baseline hit its time limit. */
  finished: boolean;
  /** This process's peak resident memory. */
  peakRssMb: number;
}

export async function runPhase(c: BenchConfig, phase: BenchPhase): Promise<PhaseResult> {
  setAutoFreeze(false);
  const spec: MmSpec = { variant: c.model, bounds: c.bounds };
  const model = await buildMmModel(spec);
  const peak = (): number => process.resourceUsage().maxRSS / 1024;
  if (phase === 'naive') {
    const nv = naiveBfs(model, c.depth);
    return { generated: nv.generated, distinct: nv.distinct, seconds: nv.seconds, startup: 0, bytesPerState: NaN, finished: nv.finished, peakRssMb: peak() };
  }
  const r = await exploreParallel(model, { depth: c.depth, stopAtFirst: false, workers: Number(phase), spec: mmModelSpec(spec) });
  return {
    generated: r.generated,
    distinct: r.distinct,
    seconds: (r.elapsedMs - r.startupMs) / 1000,
    startup: r.startupMs / 1000,
    bytesPerState: r.visitedBytesPerState,
    finished: true,
    peakRssMb: peak(),
  };
}

/** Each phase in a fresh process, so that peak memory and the heap are its own. */
function runPhaseIsolated(c: BenchConfig, phase: BenchPhase): PhaseResult {
  const bin = fileURLToPath(new URL('../../bin/mmcheck.js', import.meta.url));
  const r = spawnSync(process.execPath, [bin, 'bench', '--only', c.name, '--phase', phase, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`bench ${c.name} phase ${phase} failed: ${r.stderr.trim().split('\n').at(-1) ?? r.status}`);
  return JSON.parse(r.stdout) as PhaseResult;
}

export function runBench(c: BenchConfig, naive = true): BenchRow {
  const r1 = runPhaseIsolated(c, '1');
  const r2 = runPhaseIsolated(c, '2');
  if (r1.generated !== r2.generated || r1.distinct !== r2.distinct) throw new Error(`bench ${c.name}: 1 and 2 workers disagree`);
  const nv = naive ? runPhaseIsolated(c, 'naive') : undefined;
  return {
    name: c.name,
    startup1: r1.startup,
    startup2: r2.startup,
    generated: r1.generated,
    distinct: r1.distinct,
    seconds1: r1.seconds,
    seconds2: r2.seconds,
    generatedPerSec1: r1.generated / r1.seconds,
    distinctPerSec1: r1.distinct / r1.seconds,
    generatedPerSec2: r2.generated / r2.seconds,
    distinctPerSec2: r2.distinct / r2.seconds,
    speedup2: r1.seconds / r2.seconds,
    bytesPerState: r1.bytesPerState,
    peakRssMb: Math.max(r1.peakRssMb, r2.peakRssMb),
    naiveSeconds: nv?.seconds ?? NaN,
    naiveDistinct: nv?.distinct ?? NaN,
    naiveFinished: nv?.finished ?? false,
    naivePeakRssMb: nv?.peakRssMb ?? NaN,
    naiveRatio: (nv?.seconds ?? NaN) / r1.seconds,
  };
}

/** The naive columns: '>' marks a baseline stopped at its time limit; '-' a skipped one. */
function naiveColumns(r: BenchRow): string {
  if (Number.isNaN(r.naiveSeconds)) return `${'-'.padStart(8)} ${'-'.padStart(14)} ${'-'.padStart(6)} ${'-'.padStart(6)}`;
  const mark = r.naiveFinished ? '' : '>';
  return `${(mark + r.naiveSeconds.toFixed(1)).padStart(8)} ${num(r.naiveDistinct).padStart(14)} ${num(r.naivePeakRssMb).padStart(6)} ${(mark + r.naiveRatio.toFixed(1)).padStart(6)}`;
}

const TARGETS = '>=100k generated/s per worker, 2 workers >= 1.7x one, <= 16 B per visited state, >= 10x faster than naive';

export async function cmdBench(o: { only?: string; json?: boolean; naive?: boolean; phase?: string }): Promise<number> {
  const configs = o.only === undefined ? BENCH_CONFIGS : BENCH_CONFIGS.filter((c) => c.name === o.only);
  if (configs.length === 0) throw new UsageError(`no benchmark "${o.only}" (${BENCH_CONFIGS.map((c) => c.name).join(', ')})`);
  if (o.phase !== undefined) {
    if (o.only === undefined || !['1', '2', 'naive'].includes(o.phase)) throw new UsageError('--phase is 1, 2 or naive, with --only');
    out(JSON.stringify(await runPhase(configs[0]!, o.phase as BenchPhase)));
    return EXIT.ok;
  }
  const rows: BenchRow[] = [];
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  if (!o.json) {
    out(`${availableParallelism()} cores, load average ${load} (another busy process slows the 2-worker runs)`);
    out(`targets: ${TARGETS}`);
    out('each measurement in a fresh process; seconds exclude starting the pool; peak MB: the 1- or 2-worker process (naive: its own)');
    out(
      `${'config'.padEnd(11)} ${'generated'.padStart(10)} ${'distinct'.padStart(9)} | ${'1w s'.padStart(6)} ${'gen/s'.padStart(7)} ${'dist/s'.padStart(7)} | ${'2w s'.padStart(6)} ${'gen/s'.padStart(7)} ${'dist/s'.padStart(7)} ${'x2w'.padStart(5)} | ${'B/state'.padStart(7)} ${'peak MB'.padStart(7)} | ${'naive s'.padStart(8)} ${'naive distinct'.padStart(14)} ${'MB'.padStart(6)} ${'ratio'.padStart(6)}`,
    );
  }
  for (const c of configs) {
    const r = runBench(c, o.naive !== false);
    rows.push(r);
    if (!o.json)
      out(
        `${r.name.padEnd(11)} ${num(r.generated).padStart(10)} ${num(r.distinct).padStart(9)} | ${r.seconds1.toFixed(1).padStart(6)} ${num(r.generatedPerSec1).padStart(7)} ${num(r.distinctPerSec1).padStart(7)} | ${r.seconds2.toFixed(1).padStart(6)} ${num(r.generatedPerSec2).padStart(7)} ${num(r.distinctPerSec2).padStart(7)} ${r.speedup2.toFixed(2).padStart(5)} | ${r.bytesPerState.toFixed(1).padStart(7)} ${num(r.peakRssMb).padStart(7)} | ${naiveColumns(r)}`,
      );
  }
  if (o.json) out(JSON.stringify({ loadavg: loadavg(), cores: availableParallelism(), rows }, null, 2));
  else {
    const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');
    const minGen = Math.min(...rows.map((r) => r.generatedPerSec1));
    const minSpeed = Math.min(...rows.map((r) => r.speedup2));
    const maxBytes = Math.max(...rows.map((r) => r.bytesPerState));
    const minRatio = Math.min(...rows.map((r) => r.naiveRatio));
    out(`generated/s per worker >= 100k: ${met(minGen >= 100_000)} (lowest ${num(minGen)})`);
    out(`2 workers >= 1.7x one: ${met(minSpeed >= 1.7)} (lowest ${minSpeed.toFixed(2)}x)`);
    out(`<= 16 bytes per visited state: ${met(maxBytes <= 16)} (highest ${maxBytes.toFixed(1)})`);
    if (o.naive !== false) out(`>= 10x faster than naive: ${met(minRatio >= 10)} (lowest ${minRatio.toFixed(1)}x)`);
  }
  return EXIT.ok;
}
