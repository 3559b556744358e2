// The command line (DESIGN.md §8). Imported by bin/mmcheck.js, which
// registers tsx. Exit codes: 0 no violation, 1 violation, 2 bad input (one
// line, nothing written), 3 resource limit or internal error, 130 interrupted.
//
// `check` explores in a worker thread: the explorer is synchronous, so the
// main thread stays free to receive SIGINT (it sets a shared flag that the
// explorer polls through shouldStop), to print progress, and to survive the
// worker running out of memory (recorded as an error, exit 3).

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { checkProperties, ParseError, type Model, type Violation } from './engine/model.ts';
import { explore, replayTexts, type ExploreResult, type Progress } from './engine/explorer.ts';
import { createMmModel, DEFAULT_BOUNDS, modelNames } from '../models/mm/model.ts';
import { loadModel, VariantError } from '../models/variants/load.ts';
import { builtinVariants, MAINLINE } from '../models/variants/registry.ts';
import { splitOps } from '../models/mm/ops.ts';
import type { State } from '../models/mm/state.ts';
import { DEFAULT_DB_PATH, openStore, StoreError, type RunOutcome, type Store } from './store/db.ts';
import { stateToJson } from './report/json.ts';
import { renderDiff, renderState } from './report/text.ts';

/** Depth of `mmcheck check` without --depth (and of `npm start`): must finish in under a minute. */
export const DEFAULT_CHECK_DEPTH = 4;
/** Interval of progress lines and events. */
export const PROGRESS_MS = 3000;
/** The syscall kinds a bound's --ops may name (DESIGN.md §3). */
export const SYSCALL_KINDS: readonly string[] = ['mmap', 'fault', 'fork', 'munmap', 'mprotect', 'mremap', 'exit', 'pin'];

export const EXIT = { ok: 0, violation: 1, badInput: 2, internal: 3, interrupted: 130 } as const;

type MmModel = ReturnType<typeof createMmModel>;
type Bounds = typeof DEFAULT_BOUNDS;
type Op = MmModel extends Model<State, infer A> ? A : never;

/** Bad input found before anything is written: one line, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A stored violation that the current model no longer reproduces, or a resource limit: exit 3. */
class ResultError extends Error {
  override name = 'ResultError';
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- options

interface BoundOptions {
  procs?: string;
  pages?: string;
  maxLen?: string;
  ops?: string;
  enomem?: string;
}

function parseCount(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--${name} must be a whole number, got "${text}"`);
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be at least ${min}, got ${text}`);
  return n;
}

function knownKinds(): string[] {
  return [...new Set([...SYSCALL_KINDS, ...DEFAULT_BOUNDS.ops])];
}

/** The bounds given on the command line, checked against each other and the defaults. */
export function parseBounds(o: BoundOptions): { given: Partial<Bounds>; bounds: Bounds } {
  const given: Partial<Bounds> = {};
  const procs = parseCount('procs', o.procs, 1);
  const pages = parseCount('pages', o.pages, 1);
  const maxLen = parseCount('max-len', o.maxLen, 1);
  const enomem = parseCount('enomem', o.enomem, 0);
  if (procs !== undefined) given.procs = procs;
  if (pages !== undefined) given.pages = pages;
  if (maxLen !== undefined) given.maxLen = maxLen;
  if (enomem !== undefined) given.enomem = enomem;
  if (o.ops !== undefined) {
    const ops = o.ops
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== '');
    const known = knownKinds();
    const unknown = ops.filter((k) => !known.includes(k));
    if (unknown.length > 0)
      throw new UsageError(`--ops: unknown syscall ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${known.join(', ')})`);
    if (ops.length === 0) throw new UsageError(`--ops must name at least one syscall (known: ${known.join(', ')})`);
    given.ops = [...new Set(ops)] as Bounds['ops'];
  }
  const bounds: Bounds = { ...DEFAULT_BOUNDS, ...given };
  if (bounds.maxLen > bounds.pages)
    throw new UsageError(`--max-len ${bounds.maxLen} is larger than --pages ${bounds.pages}; lower --max-len or raise --pages`);
  return { given, bounds };
}

/** Build the model from --model (a built-in name or a variant file); a broken variant is bad input. */
async function makeModel(spec: string, bounds: Partial<Bounds>): Promise<MmModel> {
  try {
    const loaded = await loadModel(spec);
    return createMmModel({ name: loaded.name, kernel: loaded.kernel, bounds });
  } catch (e) {
    if (e instanceof ParseError || e instanceof UsageError || e instanceof VariantError) throw new UsageError(e.message);
    throw e;
  }
}

/** Operations from text or from a file (whichever `arg` names). */
function readOps(arg: string, what: string): string[] {
  let text = arg;
  // One word that looks like a path but names no file: say so rather than "unknown process".
  if (!existsSync(arg) && !/\s/.test(arg.trim()) && /[\/\\]|\.[A-Za-z]+$/.test(arg))
    throw new UsageError(`${what} ${arg}: no such file (give operations like "P0 mmap 0 4; P0 fault 1 w", or a file)`);
  if (existsSync(arg) && statSync(arg).isFile()) {
    try {
      text = readFileSync(arg, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${what} ${arg}: ${(e as Error).message}`);
    }
  }
  return splitOps(text);
}

function readFileOps(path: string): string[] {
  try {
    return splitOps(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read --file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

// ---------------------------------------------------------------- output helpers

const out = (line = ''): void => {
  process.stdout.write(line + '\n');
};
const err = (line: string): void => {
  process.stderr.write(line + '\n');
};
const event = (o: Record<string, unknown>): void => out(JSON.stringify(o));
const num = (n: number): string => Math.round(n).toLocaleString('en-US');
const indent = (text: string, by = '  '): string =>
  text
    .split('\n')
    .map((l) => (l === '' ? l : by + l))
    .join('\n');

function violationLines(vs: readonly Violation[]): string[] {
  return vs.map((v) => `VIOLATION ${v.property}: ${v.detail}`);
}

// ---------------------------------------------------------------- run

interface RunOptions extends BoundOptions {
  file?: string;
  model: string;
  json?: boolean;
  steps?: boolean;
}

async function cmdRun(opsArg: string | undefined, o: RunOptions): Promise<number> {
  const variant = o.model;
  const { given } = parseBounds(o);
  if (opsArg !== undefined && o.file !== undefined) throw new UsageError('give the operations either as an argument or with --file, not both');
  if (opsArg === undefined && o.file === undefined) throw new UsageError('no operations: give them as an argument (e.g. "P0 mmap 0 4; P0 fault 1 w") or with --file');
  const texts = o.file !== undefined ? readFileOps(o.file) : splitOps(opsArg!);
  const model = await makeModel(variant, given);
  const { states } = replayTexts(model, model.initial(), texts);
  const perState = states.map((s) => checkProperties(model, s));
  const final = states[states.length - 1]!;
  const finalViolations = perState[perState.length - 1]!;
  const anyViolation = perState.some((v) => v.length > 0);

  if (o.json) {
    const json: Record<string, unknown> = { ...stateToJson(final, finalViolations) };
    // Violations of intermediate states that the final state no longer shows.
    const earlier = perState.slice(0, -1).flatMap((vs, i) =>
      vs.map((v) => ({ step: i, operation: i === 0 ? null : texts[i - 1], property: v.property, detail: v.detail })),
    );
    if (earlier.length > 0) json.stepViolations = earlier;
    if (o.steps) json.steps = texts.map((t, i) => ({ operation: t, violations: perState[i + 1] }));
    out(JSON.stringify(json, null, 2));
  } else {
    if (perState[0]!.length > 0) out(['initial state', ...violationLines(perState[0]!)].join('\n'));
    for (let i = 0; i < texts.length; i++) {
      const vs = perState[i + 1]!;
      if (o.steps) {
        out(`step ${i + 1}: ${texts[i]}`);
        const d = renderDiff(states[i]!, states[i + 1]!);
        if (d) out(indent(d));
      }
      // Without --steps only the steps whose state violates something are named.
      if (vs.length > 0 && (o.steps || i < texts.length - 1)) {
        if (!o.steps) out(`after step ${i + 1}: ${texts[i]}`);
        out(indent(violationLines(vs).join('\n')));
      }
    }
    out(`final state after ${texts.length} operation${texts.length === 1 ? '' : 's'}`);
    out(indent(renderState(final)));
    if (finalViolations.length > 0) out(violationLines(finalViolations).join('\n'));
    else if (anyViolation) out('the final state violates no property, but an earlier state did');
    else out('no property violated');
  }
  return anyViolation ? EXIT.violation : EXIT.ok;
}

// ---------------------------------------------------------------- check

interface CheckOptions extends BoundOptions {
  model: string;
  depth?: string;
  from?: string;
  continue?: boolean;
  db: string;
  json?: boolean;
}

/** What the exploration worker needs to rebuild the model and the start state. */
interface ExploreJob {
  kind: 'mmcheck-explore';
  variant: string;
  bounds: Partial<Bounds>;
  depth: number;
  stopAtFirst: boolean;
  fromTexts: string[];
  progressMs: number;
  stop: SharedArrayBuffer;
}

type WorkerMessage =
  | { type: 'progress'; progress: Progress }
  | { type: 'done'; result: ExploreResult<Op, State> }
  | { type: 'error'; name: string; message: string; stack?: string };

/** The worker side: rebuild the model, explore, post progress and the result. */
async function workerMain(job: ExploreJob): Promise<void> {
  const port = parentPort!;
  try {
    const model = await makeModel(job.variant, job.bounds);
    const root = model.initial();
    const from = job.fromTexts.length > 0 ? replayTexts(model, root, job.fromTexts).states.at(-1) : undefined;
    const stop = new Int32Array(job.stop);
    const result = explore(model, {
      depth: job.depth,
      stopAtFirst: job.stopAtFirst,
      ...(from !== undefined ? { from, fromPrefix: job.fromTexts.length } : {}),
      progressMs: job.progressMs,
      onProgress: (progress) => port.postMessage({ type: 'progress', progress } satisfies WorkerMessage),
      shouldStop: () => Atomics.load(stop, 0) !== 0,
    });
    port.postMessage({ type: 'done', result } satisfies WorkerMessage);
  } catch (e) {
    const x = e instanceof Error ? e : new Error(String(e));
    port.postMessage({ type: 'error', name: x.name, message: x.message, stack: x.stack } satisfies WorkerMessage);
  }
}

interface Exploration {
  result?: ExploreResult<Op, State>;
  /** Set when the worker died (out of memory, a second Ctrl-C) or threw. */
  failure?: { message: string; code: number };
  lastProgress?: Progress;
}

/** Run the explorer in a worker thread; resolves when it finishes, fails, or is aborted. */
function exploreInWorker(
  job: Omit<ExploreJob, 'kind' | 'stop'>,
  onProgress: (p: Progress) => void,
  signals: { stop: () => void; abort: () => void },
): Promise<Exploration> {
  const stop = new SharedArrayBuffer(4);
  const flag = new Int32Array(stop);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(code, { eval: true, workerData: { ...job, kind: 'mmcheck-explore', stop } satisfies ExploreJob });
  const state: Exploration = {};
  signals.stop = () => Atomics.store(flag, 0, 1);
  return new Promise((resolve) => {
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      resolve(state);
    };
    signals.abort = () => {
      state.failure ??= { message: 'aborted by a second interrupt', code: EXIT.interrupted };
      void worker.terminate().then(settle);
    };
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') {
        state.lastProgress = m.progress;
        onProgress(m.progress);
      } else if (m.type === 'done') {
        state.result = m.result;
        settle();
      } else {
        const isInput = m.name === 'ParseError' || m.name === 'UsageError';
        state.failure = {
          message: isInput ? m.message : `internal error: ${m.message}${process.env.MMCHECK_DEBUG ? `\n${m.stack}` : ''}`,
          code: isInput ? EXIT.badInput : EXIT.internal,
        };
        settle();
      }
    });
    worker.on('error', (e: Error & { code?: string }) => {
      state.failure =
        e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? { message: 'out of memory: lower --depth or the bounds (or raise node --max-old-space-size)', code: EXIT.internal }
          : { message: `internal error: ${e.message}`, code: EXIT.internal };
      settle();
    });
    worker.on('exit', () => {
      state.failure ??= state.result ? undefined : { message: 'internal error: the explorer stopped without a result', code: EXIT.internal };
      settle();
    });
  });
}

/** The same in this thread (MMCHECK_NO_WORKER=1, for debugging): the synchronous search cannot see Ctrl-C, which then kills the process and leaves the run 'running'. */
async function exploreHere(job: Omit<ExploreJob, 'kind' | 'stop'>, onProgress: (p: Progress) => void): Promise<Exploration> {
  const model = await makeModel(job.variant, job.bounds);
  const root = model.initial();
  const from = job.fromTexts.length > 0 ? replayTexts(model, root, job.fromTexts).states.at(-1) : undefined;
  const result = explore(model, {
    depth: job.depth,
    stopAtFirst: job.stopAtFirst,
    ...(from !== undefined ? { from, fromPrefix: job.fromTexts.length } : {}),
    progressMs: job.progressMs,
    onProgress,
  });
  return { result };
}

function progressLine(p: Progress): string {
  return (
    `Progress(${p.depth}): ${num(p.generated)} states generated (${num(p.statesPerSec)} s/s), ` +
    `${num(p.distinct)} distinct states found, ${num(p.queue)} states left on queue, ` +
    `${num(p.heapMb)} MB, ${(p.elapsedMs / 1000).toFixed(0)} s`
  );
}

function boundsText(b: Bounds): string {
  return `procs ${b.procs}, pages ${b.pages}, max-len ${b.maxLen}, ops ${b.ops.join(',')}, enomem ${b.enomem}`;
}

async function cmdCheck(o: CheckOptions): Promise<number> {
  // 1. Everything that can be wrong with the input is found before the store is opened.
  const variant = o.model;
  const { given, bounds } = parseBounds(o);
  const depth = parseCount('depth', o.depth, 0) ?? DEFAULT_CHECK_DEPTH;
  const model = await makeModel(variant, given);
  const fromTexts = o.from !== undefined ? readOps(o.from, '--from') : [];
  if (fromTexts.length > 0) replayTexts(model, model.initial(), fromTexts); // ParseError: exit 2
  if (fromTexts.length > depth)
    throw new UsageError(`--from has ${fromTexts.length} operations, more than --depth ${depth}; raise --depth`);

  // 2. The run is recorded as 'running' before the search starts.
  const store = openStore(o.db);
  try {
    const runId = store.startRun({
      command: ['check', ...process.argv.slice(3)].join(' '),
      model: 'mm',
      variant,
      bounds: { ...bounds, depth, ...(fromTexts.length > 0 ? { from: fromTexts } : {}) },
      workers: 1,
      maxDepth: depth,
    });
    if (!o.json) out(`mmcheck check: model ${model.name}, depth ${depth}, ${boundsText(bounds)} (run ${runId})`);

    let interrupts = 0;
    const signals = { stop: () => {}, abort: () => {} };
    const onSigint = (): void => {
      interrupts++;
      if (interrupts === 1) {
        err('interrupted: stopping the search and recording the run (Ctrl-C again to abort now)');
        signals.stop();
      } else signals.abort();
    };
    process.on('SIGINT', onSigint);
    const tty = process.stderr.isTTY === true;
    const onProgress = (p: Progress): void => {
      if (tty) err(progressLine(p));
      if (o.json) event({ event: 'progress', ...p });
    };
    const job = { variant, bounds: given, depth, stopAtFirst: !o.continue, fromTexts, progressMs: PROGRESS_MS };
    let ex: Exploration;
    try {
      ex = process.env.MMCHECK_NO_WORKER ? await exploreHere(job, onProgress) : await exploreInWorker(job, onProgress, signals);
    } finally {
      process.off('SIGINT', onSigint);
    }

    // 3. The run is finished in one transaction with its violations and coverage.
    const r = ex.result;
    if (!r) {
      const p = ex.lastProgress;
      const outcome: RunOutcome = ex.failure?.code === EXIT.interrupted ? 'interrupted' : 'error';
      store.finishRun(runId, {
        outcome: outcome as Exclude<RunOutcome, 'running'>,
        generated: p?.generated ?? 0,
        distinct: p?.distinct ?? 0,
        depthReached: p?.depth ?? 0,
        durationMs: p?.elapsedMs ?? 0,
        error: ex.failure?.message.split('\n')[0] ?? 'unknown',
      });
      throw new ResultError(`${ex.failure?.message ?? 'internal error'} (run ${runId} recorded as ${outcome})`, ex.failure?.code ?? EXIT.internal);
    }
    const ids = store.finishRun(runId, {
      outcome: r.outcome,
      generated: r.generated,
      distinct: r.distinct,
      depthReached: r.depthReached,
      durationMs: r.elapsedMs,
      coverage: r.coverage,
      violations: r.violations.map((v) => ({
        model: model.name,
        property: v.property,
        depth: v.depth,
        trace: [...fromTexts, ...v.traceText],
        finalState: stateToJson(v.state, v.details.map((detail) => ({ property: v.property, detail }))),
        fingerprint: v.fingerprint,
        detail: v.detail,
      })),
    });

    // 4. The summary.
    const seconds = r.elapsedMs / 1000;
    if (o.json) {
      r.violations.forEach((v, i) =>
        event({
          event: 'violation',
          id: ids[i],
          property: v.property,
          detail: v.detail,
          details: v.details,
          depth: v.depth,
          fingerprint: v.fingerprint,
          trace: [...fromTexts, ...v.traceText],
        }),
      );
      event({
        event: 'done',
        run: runId,
        model: model.name,
        outcome: r.outcome,
        generated: r.generated,
        distinct: r.distinct,
        depthReached: r.depthReached,
        levelSizes: r.levelSizes,
        seconds,
        statesPerSec: r.statesPerSec,
        coverage: r.coverage,
        neverFired: r.neverFired,
        collisionProbability: r.collisionProbability,
        violations: ids,
      });
    } else {
      out(
        `${num(r.generated)} states generated, ${num(r.distinct)} distinct states, depth reached ${r.depthReached}, ` +
          `${seconds.toFixed(1)} s, ${num(r.statesPerSec)} states/s`,
      );
      out(`outcome: ${r.outcome}${r.exhausted ? ' (every reachable state explored)' : ''}`);
      out('coverage (fired / new states):');
      const kinds = Object.keys(r.coverage);
      const w = Math.max(0, ...kinds.map((k) => k.length));
      for (const k of kinds) out(`  ${k.padEnd(w)}  ${num(r.coverage[k]!.fired)} / ${num(r.coverage[k]!.newStates)}`);
      out(`never fired: ${r.neverFired.length > 0 ? r.neverFired.join(', ') : 'none'}`);
      out(`fingerprint collision probability: ${r.collisionProbability.toExponential(1)}`);
      r.violations.forEach((v, i) => {
        out();
        out(`violation ${ids[i]}: ${v.property} at depth ${v.depth}`);
        for (const d of v.details) out(`  ${d}`);
        out('  trace:');
        [...fromTexts, ...v.traceText].forEach((t, k) => out(`    ${k + 1}. ${t}`));
        out(`  replay: mmcheck replay ${ids[i]}${o.db === DEFAULT_DB_PATH ? '' : ` --db ${o.db}`}`);
      });
    }
    if (r.outcome === 'interrupted') {
      err(`interrupted at depth ${r.depthReached}; run ${runId} recorded as interrupted`);
      return EXIT.interrupted;
    }
    return r.violations.length > 0 ? EXIT.violation : EXIT.ok;
  } finally {
    store.close();
  }
}

// ---------------------------------------------------------------- replay

function parseId(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`violation id must be a positive whole number, got "${text}"`);
  return Number(text);
}

async function cmdReplay(idText: string, o: { db: string; format: string }): Promise<number> {
  const id = parseId(idText);
  if (o.format !== 'text' && o.format !== 'json') throw new UsageError(`--format must be text or json, got "${o.format}"`);
  const store = openStore(o.db, { mustExist: true });
  let v, run;
  try {
    v = store.getViolation(id);
    if (!v) throw new UsageError(`no violation ${id} in ${o.db}; see mmcheck list --db ${o.db}`);
    run = store.getRun(v.trace_run ?? v.first_run);
  } finally {
    store.close();
  }
  if (!run) throw new ResultError(`violation ${id}: its run ${v.trace_run ?? v.first_run} is missing from ${o.db}`, EXIT.internal);
  const names: readonly string[] = modelNames();
  if (!names.includes(run.variant))
    throw new ResultError(`violation ${id} was found by model "${run.variant}", which this mmcheck does not have`, EXIT.internal);
  const stored = JSON.parse(run.bounds) as Partial<Bounds> & { depth?: number; from?: string[] };
  const bounds: Partial<Bounds> = {};
  for (const k of Object.keys(DEFAULT_BOUNDS) as (keyof Bounds)[]) if (stored[k] !== undefined) (bounds as Record<string, unknown>)[k] = stored[k];
  const model = await makeModel(run.variant, bounds);
  const texts = v.trace === '' ? [] : v.trace.split('\n');
  let states: State[];
  try {
    states = replayTexts(model, model.initial(), texts).states;
  } catch (e) {
    if (e instanceof ParseError)
      throw new ResultError(`violation ${id} (${v.property}) no longer reproduces: its trace does not replay: ${e.message} (the model changed since run ${run.id})`, EXIT.internal);
    throw e;
  }
  const perState = states.map((s) => checkProperties(model, s));
  const final = states[states.length - 1]!;
  const finalViolations = perState[perState.length - 1]!;
  const reproduced = finalViolations.some((x) => x.property === v.property);

  if (o.format === 'json') {
    out(
      JSON.stringify(
        {
          violation: { id: v.id, model: v.model, property: v.property, detail: v.detail, depth: v.depth, fingerprint: v.fingerprint, firstRun: v.first_run, lastRun: v.last_run, timesSeen: v.times_seen },
          reproduced,
          steps: texts.map((t, i) => ({ step: i + 1, operation: t, state: stateToJson(states[i + 1]!, perState[i + 1]) })),
          final: stateToJson(final, finalViolations),
        },
        null,
        2,
      ),
    );
  } else {
    out(`violation ${v.id}: ${v.property} at depth ${v.depth} (model ${v.model}, found by run ${v.first_run}, seen ${v.times_seen}x)`);
    out(`  ${v.detail}`);
    out('initial state');
    out(indent(renderState(states[0]!)));
    for (let i = 0; i < texts.length; i++) {
      out(`step ${i + 1}: ${texts[i]}`);
      const d = renderDiff(states[i]!, states[i + 1]!);
      out(indent(d || '(no change)'));
      const vs = perState[i + 1]!;
      if (vs.length > 0) out(indent(violationLines(vs).join('\n')));
    }
    out('final state');
    out(indent(renderState(final)));
  }
  if (!reproduced)
    throw new ResultError(
      `violation ${id} no longer reproduces: ${v.property} holds after replaying its ${texts.length} steps (the model changed since run ${run.id})`,
      EXIT.internal,
    );
  if (o.format === 'text') out(`confirmed: ${v.property} is violated`);
  return EXIT.violation;
}

// ---------------------------------------------------------------- list, properties, models

function cmdList(o: { db: string; limit: string; json?: boolean }): number {
  const limit = parseCount('limit', o.limit, 1)!;
  if (!existsSync(o.db)) {
    if (o.json) out(JSON.stringify({ runs: [], violations: [] }));
    else out(`no runs recorded yet (${o.db} does not exist)`);
    return EXIT.ok;
  }
  const store: Store = openStore(o.db, { mustExist: true });
  try {
    const runs = store.listRuns(limit);
    const violations = store.listViolations(limit);
    if (o.json) {
      out(
        JSON.stringify(
          {
            runs: runs.map((r) => ({ ...r, bounds: JSON.parse(r.bounds) as unknown })),
            violations: violations.map(({ final_state: _f, ...rest }) => ({ ...rest, trace: rest.trace === '' ? [] : rest.trace.split('\n') })),
          },
          null,
          2,
        ),
      );
      return EXIT.ok;
    }
    out(`runs (newest first)`);
    if (runs.length === 0) out('  none');
    for (const r of runs)
      out(
        `  ${String(r.id).padStart(4)}  ${r.started_at.replace('T', ' ').slice(0, 19)}  ${r.variant}  depth ${r.max_depth ?? '?'}  ` +
          `${r.outcome}  ${num(r.generated)} generated  ${num(r.distinct_states)} distinct  ${(r.duration_ms / 1000).toFixed(1)} s` +
          (r.error ? `  (${r.error})` : ''),
      );
    out(`violations (most recently seen first)`);
    if (violations.length === 0) out('  none');
    for (const v of violations)
      out(
        `  ${String(v.id).padStart(4)}  ${v.model}  ${v.property}  depth ${v.depth}  runs ${v.first_run}..${v.last_run}  seen ${v.times_seen}x  ${v.detail}`,
      );
    return EXIT.ok;
  } finally {
    store.close();
  }
}

async function cmdProperties(o: { model: string; json?: boolean }): Promise<number> {
  const model = await makeModel(o.model, {});
  if (o.json) {
    out(JSON.stringify(model.properties.map((p) => ({ id: p.id, when: p.when, description: p.description, rule: p.rule })), null, 2));
    return EXIT.ok;
  }
  for (const p of model.properties) {
    out(`${p.id}  [${p.when}]  ${p.description}`);
    out(`    ${p.rule}`);
  }
  return EXIT.ok;
}

function cmdModels(o: { json?: boolean }): number {
  const rows = [{ name: MAINLINE, base: '', description: 'Linux 7.x mainline, as in docs/kernel-semantics.md' }, ...builtinVariants().map((v) => ({ name: v.name, base: v.base, description: v.description }))];
  if (o.json) out(JSON.stringify(rows));
  else for (const r of rows) out(`${r.name.padEnd(28)} ${r.base ? `(on ${r.base}) ` : ''}${r.description}`);
  return EXIT.ok;
}

function addBoundOptions(c: Command): Command {
  return c
    .option('--procs <n>', `processes (default ${DEFAULT_BOUNDS.procs})`)
    .option('--pages <n>', `pages per address space (default ${DEFAULT_BOUNDS.pages})`)
    .option('--max-len <n>', `longest mapping, in pages (default ${DEFAULT_BOUNDS.maxLen})`)
    .option('--ops <list>', `syscalls allowed, comma separated (default ${DEFAULT_BOUNDS.ops.join(',')})`)
    .option('--enomem <n>', `ENOMEM injections (default ${DEFAULT_BOUNDS.enomem})`);
}

function program(setCode: (n: number) => void): Command {
  const p = new Command('mmcheck')
    .description("Exhaustive model checker of the Linux kernel's anonymous reverse mapping")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(`mmcheck: ${s.replace(/^error: /, '').trim()}\n`) });

  addBoundOptions(
    p
      .command('run')
      .description('execute operations from the initial state and print the final state and violated properties')
      .argument('[ops]', 'operations separated by ";" or newlines, e.g. "P0 mmap 0 4; P0 fault 1 w"')
      .option('--file <path>', 'read the operations from a file')
      .option('--model <name>', 'model or variant', 'mainline')
      .option('--json', 'print the final state as JSON')
      .option('--steps', 'print what every step changed'),
  ).action((ops: string | undefined, o: RunOptions) => cmdRun(ops, o).then(setCode));

  addBoundOptions(
    p
      .command('check')
      .description('explore every sequence of operations up to --depth and check every property')
      .option('--model <name>', 'model or variant', 'mainline')
      .option('--depth <n>', `maximum number of operations (default ${DEFAULT_CHECK_DEPTH})`)
      .option('--from <ops-or-file>', 'start from the state these operations reach (counted in the depth)')
      .option('--continue', 'keep going after the first violation (shortest violation per property)')
      .option('--db <path>', 'results database', DEFAULT_DB_PATH)
      .option('--json', 'one JSON event per line on stdout (progress, violation, done)'),
  ).action(async (o: CheckOptions) => setCode(await cmdCheck(o)));

  p.command('list')
    .description('recorded runs and violations, newest first')
    .option('--db <path>', 'results database', DEFAULT_DB_PATH)
    .option('--limit <n>', 'rows of each kind', '20')
    .option('--json', 'print JSON')
    .action((o: { db: string; limit: string; json?: boolean }) => setCode(cmdList(o)));

  p.command('replay')
    .description('re-execute a stored violation step by step and confirm it')
    .argument('<violation-id>', 'id shown by check and list')
    .option('--db <path>', 'results database', DEFAULT_DB_PATH)
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((id: string, o: { db: string; format: string }) => cmdReplay(id, o).then(setCode));

  p.command('properties')
    .description('the properties of a model: id, when checked, description, kernel rule')
    .option('--model <name>', 'model or variant', 'mainline')
    .option('--json', 'print JSON')
    .action((o: { model: string; json?: boolean }) => cmdProperties(o).then(setCode));

  p.command('models')
    .description('built-in models and variants')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => setCode(cmdModels(o)));
  return p;
}

/** Run the command line; returns the exit code. Errors become one line on stderr. */
export async function main(argv: readonly string[]): Promise<number> {
  let code: number = EXIT.ok;
  try {
    await program((n) => (code = n)).parseAsync([...argv]);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed its one line (or the help).
      // Help asked for: 0; help shown because no command was given, or a usage error: 2.
      return e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    if (e instanceof UsageError || e instanceof ParseError || e instanceof StoreError || e instanceof InvalidArgumentError) {
      err(`mmcheck: ${e.message}`);
      return EXIT.badInput;
    }
    if (e instanceof ResultError) {
      err(`mmcheck: ${e.message}`);
      return e.code;
    }
    const x = e instanceof Error ? e : new Error(String(e));
    if (x instanceof RangeError) err(`mmcheck: resource limit: ${x.message}; lower --depth or the bounds`);
    else err(`mmcheck: internal error: ${x.message}${process.env.MMCHECK_DEBUG ? `\n${x.stack}` : ' (MMCHECK_DEBUG=1 for the stack)'}`);
    return EXIT.internal;
  }
}

// A closed pipe (`mmcheck list | head`) ends the output, not the process with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const job = workerData as Partial<ExploreJob> | undefined;
if (!isMainThread && job?.kind === 'mmcheck-explore') void workerMain(job as ExploreJob);
else if (isMainThread) process.exitCode = await main(process.argv);
