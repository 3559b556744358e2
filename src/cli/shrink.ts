// Shrinking a counterexample of the mm model (`mmcheck shrink ID`, and
// every violation `simulate` finds before it is stored): delta debugging
// with the mm simplifications (src/engine/shrink.ts, src/cli/mm-search.ts),
// then an exhaustive search, over the bounds the shrunk trace uses, of every
// trace one operation shorter, to say whether a shorter violation exists
// (and to take it when it does).
import { exploreParallel } from '../engine/parallel.ts';
import { shrinkTrace, testTrace } from '../engine/shrink.ts';
import { replayTexts } from '../engine/explorer.ts';
import { openStore } from '../store/db.ts';
import { stateToJson } from '../report/json.ts';
import type { State } from '../../models/mm/state.ts';
import { mmModelSpec } from './model-spec.ts';
import { mmTraceSize, simplifyMmTrace, traceBounds } from './mm-search.ts';
import { boundsText } from './exploration.ts';
import { modelOfRun, boundsOfRun, parseId } from './replay.ts';
import { EXIT, ResultError, UsageError, type Bounds, type MmModel, makeModel, parseCount, out, err, event, traceLines } from './common.ts';
import { availableParallelism } from 'node:os';

/** Default time of the exhaustive search for a shorter violation. */
import { DEFAULT_EXHAUSTIVE_S } from './common.ts';
export { DEFAULT_EXHAUSTIVE_S };

export interface ExhaustiveReport {
  /** Searched every trace up to this many operations (shrunk length - 1). */
  depth: number;
  bounds: string;
  /** found: a shorter violation (stored); none: none within the bounds; unknown: the search stopped first. */
  verdict: 'found' | 'none' | 'unknown' | 'skipped';
  /** Every trace of this many operations or fewer was checked. */
  checkedDepth: number;
  distinct: number;
  seconds: number;
  /** Why the search stopped early. */
  stopped?: string;
}

export interface Shrunk {
  trace: string[];
  state: State;
  details: string[];
  fingerprint: string;
  original: string[];
  /** Stored in violations.shrink. */
  info: {
    method: 'delta-debugging';
    originalLength: number;
    length: number;
    /** Length after delta debugging (before the exhaustive search). */
    ddLength: number;
    candidates: number;
    accepted: number;
    /** Time of the delta debugging (the exhaustive search's is its own). */
    seconds: number;
    exhaustive: ExhaustiveReport;
  };
}

export interface ShrinkJob {
  variant: string;
  /** The bounds of the run that found the trace. */
  bounds: Bounds;
  /** That run's model. */
  model: MmModel;
  property: string;
  /** The violating trace, from the initial state. */
  trace: string[];
  workers: number;
  /** Time for the exhaustive search (0: skip it). */
  exhaustiveMs: number;
  shouldStop?(): boolean;
}

/** Shrink, then search exhaustively for a shorter violation over the bounds the shrunk trace uses. */
export async function shrinkViolation(job: ShrinkJob): Promise<Shrunk> {
  const { model, property } = job;
  const root = model.initial();
  const opts = { model, root, property, simplify: simplifyMmTrace, size: mmTraceSize, ...(job.shouldStop ? { shouldStop: job.shouldStop } : {}) };
  let r = shrinkTrace(opts, job.trace);
  let candidates = r.tried;
  let accepted = r.accepted;
  const ddLength = r.trace.length;
  let ddMs = r.ms;

  const depth = r.trace.length - 1;
  const tb = traceBounds(r.trace, job.bounds);
  const exhaustive: ExhaustiveReport = { depth, bounds: boundsText(tb), verdict: 'skipped', checkedDepth: 0, distinct: 0, seconds: 0 };
  if (depth >= 0 && job.exhaustiveMs > 0 && !job.shouldStop?.()) {
    const deadline = performance.now() + job.exhaustiveMs;
    const small = await makeModel(job.variant, tb, [property]);
    const e = await exploreParallel(small, {
      depth,
      stopAtFirst: true,
      workers: job.workers,
      spec: mmModelSpec({ variant: job.variant, bounds: tb, only: [property] }),
      shouldStop: () => performance.now() > deadline || job.shouldStop?.() === true,
      maxMemoryMb: 3000,
    });
    exhaustive.distinct = e.distinct;
    exhaustive.seconds = e.elapsedMs / 1000;
    const v = e.violations[0];
    if (v !== undefined) {
      // Shortest within the trace's bounds; it replays in the run's model (its bounds contain them).
      const shorter = testTrace(model, root, property, v.traceText);
      if (shorter !== undefined && shorter.trace.length < r.trace.length) {
        exhaustive.verdict = 'found';
        exhaustive.checkedDepth = shorter.trace.length;
        const again = shrinkTrace(opts, shorter.trace);
        candidates += again.tried;
        accepted += again.accepted;
        ddMs += again.ms;
        r = again;
      }
    } else if (e.outcome === 'interrupted') {
      exhaustive.verdict = 'unknown';
      exhaustive.checkedDepth = e.depthReached;
      exhaustive.stopped = e.memoryLimit ?? `time limit of ${job.exhaustiveMs / 1000} s`;
    } else {
      exhaustive.verdict = 'none';
      exhaustive.checkedDepth = depth;
    }
  }
  return {
    trace: r.trace,
    state: r.state,
    details: r.details,
    fingerprint: r.fingerprint,
    original: job.trace,
    info: {
      method: 'delta-debugging',
      originalLength: job.trace.length,
      length: r.trace.length,
      ddLength,
      candidates,
      accepted,
      seconds: ddMs / 1000,
      exhaustive,
    },
  };
}

const ops = (n: number): string => `${n} operation${n === 1 ? '' : 's'}`;

/** One line on the exhaustive search for a shorter violation. */
export function exhaustiveLine(e: ExhaustiveReport): string {
  switch (e.verdict) {
    case 'skipped':
      return 'shorter: not searched';
    case 'none':
      return `shorter: none; every trace of up to ${ops(e.depth)} checked over ${e.bounds} (${e.seconds.toFixed(1)} s)`;
    case 'unknown':
      return `shorter: unknown; none of up to ${ops(e.checkedDepth)} over ${e.bounds}, search stopped at ${e.stopped} (${e.seconds.toFixed(1)} s)`;
    case 'found':
      return `shorter: found by an exhaustive search over ${e.bounds}, shrunk and stored (${e.seconds.toFixed(1)} s)`;
  }
}

/** The violation as the store takes it. */
export function shrunkRecord(modelName: string, property: string, s: Shrunk) {
  return {
    model: modelName,
    property,
    depth: s.trace.length,
    trace: s.trace,
    finalState: stateToJson(s.state, s.details.map((detail) => ({ property, detail }))),
    fingerprint: s.fingerprint,
    detail: s.details[0]!,
    originalTrace: s.original,
    shrink: s.info,
  };
}

export interface ShrinkOptions {
  db: string;
  json?: boolean;
  workers?: string;
  exhaustiveTime?: string;
}

/** `mmcheck shrink ID`: shrink a stored violation and store the result (a new run) beside the original. */
export async function cmdShrink(idText: string, o: ShrinkOptions): Promise<number> {
  const id = parseId(idText);
  const workers = parseCount('workers', o.workers, 1) ?? availableParallelism();
  const exhaustiveS = parseCount('exhaustive-time', o.exhaustiveTime, 0) ?? DEFAULT_EXHAUSTIVE_S;
  const store = openStore(o.db, { mustExist: true });
  try {
    const v = store.getViolation(id);
    if (!v) throw new UsageError(`no violation ${id} in ${o.db}; see mmcheck list --db ${o.db}`);
    const run = store.getRun(v.trace_run ?? v.first_run);
    if (!run) throw new ResultError(`violation ${id}: its run ${v.trace_run ?? v.first_run} is missing from ${o.db}`, EXIT.internal);
    const model = await modelOfRun(run, id);
    const trace = v.trace === '' ? [] : v.trace.split('\n');
    if (testTrace(model, model.initial(), v.property, trace) === undefined) {
      // Say why: the trace no longer runs, or no longer violates.
      try {
        replayTexts(model, model.initial(), trace);
      } catch (e) {
        throw new ResultError(`violation ${id} (${v.property}) no longer reproduces: ${(e as Error).message} (the model changed since run ${run.id})`, EXIT.internal);
      }
      throw new ResultError(`violation ${id} no longer reproduces: ${v.property} holds after replaying its ${trace.length} steps (the model changed since run ${run.id})`, EXIT.internal);
    }
    const bounds: Bounds = { ...model.bounds, ...boundsOfRun(run) };
    let stop = false;
    const onSigint = (): void => {
      stop = true;
    };
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigint);
    const runId = store.startRun({ command: ['shrink', ...process.argv.slice(3)].join(' '), model: 'mm', variant: run.variant, bounds: JSON.parse(run.bounds), workers, maxDepth: trace.length });
    let s: Shrunk;
    try {
      s = await shrinkViolation({ variant: run.variant, bounds, model, property: v.property, trace, workers, exhaustiveMs: exhaustiveS * 1000, shouldStop: () => stop });
    } catch (e) {
      store.finishRun(runId, { outcome: 'error', generated: 0, distinct: 0, depthReached: 0, durationMs: 0, error: (e as Error).message.split('\n')[0]! });
      throw e;
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
    }
    const [newId] = store.finishRun(runId, {
      outcome: stop ? 'interrupted' : 'violation',
      generated: s.info.candidates,
      distinct: s.info.exhaustive.distinct,
      depthReached: s.trace.length,
      durationMs: (s.info.seconds + s.info.exhaustive.seconds) * 1000,
      violations: [shrunkRecord(model.name, v.property, s)],
    });
    if (o.json) event({ event: 'shrunk', id: newId, from: id, run: runId, property: v.property, trace: s.trace, original: s.original, details: s.details, ...s.info });
    else {
      out(`violation ${newId}: ${v.property}, violation ${id} shrunk from ${s.original.length} to ${s.trace.length} operations (${s.info.candidates} candidates, ${s.info.seconds.toFixed(1)} s; run ${runId})`);
      for (const d of s.details) out(`  ${d}`);
      for (const l of traceLines(s.trace, newId!, o.db)) out(l);
      out(`  ${exhaustiveLine(s.info.exhaustive)}`);
    }
    if (stop) err(`interrupted; run ${runId} recorded as interrupted with the trace shrunk so far`);
    return stop ? EXIT.interrupted : EXIT.violation;
  } finally {
    store.close();
  }
}
