// `mmcheck check`: explore, record the run, print the summary.
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { replayTexts } from '../engine/explorer.ts';
import { readCheckpoint, CheckpointError, type Checkpoint } from '../engine/checkpoint.ts';
import { recordedModelSpec } from '../../models/variants/load.ts';
import { DEFAULT_BOUNDS } from '../../models/mm/model.ts';
import { DEFAULT_DB_PATH, openStore, type Store } from '../store/db.ts';
import { parseRedisUrl, redactUrls } from '../engine/redis.ts';
import { exploreAndRecord, progressLine, boundsText, checkpointMeta, checkpointPath, modelHash, type CheckpointIdentity, type ParallelJob } from './exploration.ts';
import { PIPE_PROGRESS_MS, throttledProgress } from './progress.ts';
import { DEFAULT_CHECK_DEPTH, EXIT, UsageError, type BoundOptions, type Bounds, parseCount, parseBounds, parsePropertyList, makeModel, lockPointNote, readOps, out, err, event, num, traceLines } from './common.ts';

// ---------------------------------------------------------------- check

export interface CheckOptions extends BoundOptions {
  model: string;
  depth?: string;
  from?: string;
  continue?: boolean;
  properties?: string;
  db: string;
  json?: boolean;
  workers?: string;
  maxMemory?: string;
  checkpointEvery?: string;
  resume?: string;
  checkImmutability?: boolean;
  /** Expand on `mmcheck worker` processes through this Redis (src/engine/distributed.ts). */
  redis?: string;
}

/** Checkpoints live next to the database: <db dir>/checkpoints/<db file name>-<run>.ckpt. */
export const checkpointDir = (db: string): string => join(dirname(db), 'checkpoints');

/** --resume RUN: the run's checkpoint, read and checked (bad input otherwise). */
function loadResume(store: Store, db: string, text: string): { runId: number; checkpoint: Checkpoint } {
  const runId = parseCount('resume', text, 1)!;
  const run = store.getRun(runId);
  if (run === undefined) throw new UsageError(`--resume ${runId}: no run ${runId} in ${db}`);
  const path = checkpointPath(checkpointDir(db), db, runId);
  if (!existsSync(path)) throw new UsageError(`--resume ${runId}: run ${runId} has no checkpoint (${path}); checkpoints are written with --checkpoint-every`);
  let checkpoint: Checkpoint;
  try {
    checkpoint = readCheckpoint(path);
  } catch (e) {
    if (e instanceof CheckpointError) throw new UsageError(`--resume ${runId}: ${e.message}`);
    throw e;
  }
  // The file's name is only a convention: the checkpoint must say it is this
  // run of this database, of the same model file (issue 14).
  const meta = checkpointMeta(checkpoint, runId);
  const id = meta.identity as Partial<CheckpointIdentity> | undefined;
  if (id === undefined || typeof id.startedAt !== 'string')
    throw new UsageError(`--resume ${runId}: ${path} does not say which run it belongs to (written by an older mmcheck); run the check again`);
  if (id.run !== runId || id.startedAt !== run.started_at)
    throw new UsageError(`--resume ${runId}: ${path} belongs to run ${id.run} started ${id.startedAt} of ${id.db}, not to run ${runId} of ${db} (started ${run.started_at})`);
  const hash = modelHash(meta.variant);
  if (id.modelHash !== hash)
    throw new UsageError(`--resume ${runId}: the model file ${meta.variant} changed (or is gone) since run ${runId} was checkpointed; its checkpoint is of another model`);
  return { runId, checkpoint };
}

/** The last line of a check: what it showed, in one line (issue 14). */
export function verdictLine(
  r: { outcome: string; exhausted?: boolean; distinct: number; depthReached: number; violations: readonly { property: string; depth: number }[]; memoryLimit?: string },
  properties: number,
  seconds: number,
  ids: readonly number[],
  dbOption = '',
): string {
  const on = `${num(r.distinct)} distinct states`;
  const time = `${seconds.toFixed(1)} s`;
  if (r.violations.length > 0) {
    const names = [...new Set(r.violations.map((v) => v.property))];
    const depth = Math.min(...r.violations.map((v) => v.depth));
    const replay = ids.length > 0 ? `; mmcheck replay ${ids[0]}${dbOption}` : '';
    return `FAIL: ${names.join(', ')} violated at depth ${depth} (${on} explored, ${time})${replay}`;
  }
  const props = `${properties} ${properties === 1 ? 'property holds' : 'properties hold'}`;
  if (r.outcome === 'interrupted')
    return `INCOMPLETE: stopped at depth ${r.depthReached}${r.memoryLimit !== undefined ? ' (memory limit)' : ''}; no violation on the ${on} explored (${time})`;
  if (r.outcome === 'complete' || r.exhausted) return `PASS: ${props} on all ${on}, every reachable state (depth ${r.depthReached}, ${time})`;
  return `PASS: ${props} on ${on} to depth ${r.depthReached} (${time})`;
}

/** What the exploration worker needs to rebuild the model and the start state. */
export async function cmdCheck(o: CheckOptions): Promise<number> {
  // 1. Everything that can be wrong with the input is found before the store
  // is written (--resume only reads it, to find the run and its checkpoint).
  const workers = parseCount('workers', o.workers, 1) ?? availableParallelism();
  const maxMemoryMb = parseCount('max-memory', o.maxMemory, 1);
  const checkpointEvery = parseCount('checkpoint-every', o.checkpointEvery, 0);
  const depth = parseCount('depth', o.depth, 0) ?? DEFAULT_CHECK_DEPTH;
  let variant: string;
  let given: Partial<Bounds>;
  let bounds: Bounds;
  let fromTexts: string[];
  let stopAtFirst = !o.continue;
  let only: string[] | undefined;
  let resume: { runId: number; checkpoint: Checkpoint } | undefined;
  if (o.resume !== undefined) {
    parseCount('resume', o.resume, 1);
    const existing = openStore(o.db, { mustExist: true });
    try {
      resume = loadResume(existing, o.db, o.resume);
    } finally {
      existing.close();
    }
    // The model, bounds, --from, --continue and --properties are the run's.
    const meta = checkpointMeta(resume.checkpoint, resume.runId);
    ({ variant, given, fromTexts, stopAtFirst, only } = meta);
    bounds = { ...DEFAULT_BOUNDS, ...given };
    const at = resume.checkpoint.fromPrefix + resume.checkpoint.level;
    if (o.depth === undefined || depth < at)
      throw new UsageError(`--resume ${resume.runId}: the checkpoint is at depth ${at}; give --depth ${at} or more`);
  } else {
    variant = recordedModelSpec(o.model);
    ({ given, bounds } = parseBounds(o));
    only = parsePropertyList(o.properties);
    fromTexts = o.from !== undefined ? readOps(o.from, '--from') : [];
  }
  const model = await makeModel(variant, given, only);
  const note = lockPointNote(model);
  if (note !== undefined) err(`mmcheck: ${note}`);
  if (fromTexts.length > 0) replayTexts(model, model.initial(), fromTexts); // ParseError: exit 2
  if (fromTexts.length > depth)
    throw new UsageError(`--from has ${fromTexts.length} operations, more than --depth ${depth}; raise --depth`);
  // --redis: checked now (bad input, exit 2); never printed or stored with its credentials.
  const redisUrl = o.redis;
  const redis = redisUrl !== undefined ? parseRedisUrl(redisUrl) : undefined;
  const parallel: ParallelJob = {
    ...(redis ? { redis: { url: redisUrl!, onNote: (m: string) => err(`mmcheck: ${m}`) } } : {}),
    workers,
    checkpointDir: checkpointDir(o.db),
    db: o.db,
    ...(maxMemoryMb !== undefined ? { maxMemoryMb } : {}),
    // A resumed run checkpoints where it stops, so it can be resumed again.
    ...(checkpointEvery !== undefined ? { checkpointEveryMs: checkpointEvery * 1000 } : resume ? { checkpointEveryMs: 2 ** 31 } : {}),
    ...(resume ? { resume } : {}),
  };

  const store = openStore(o.db);
  try {
    // 2. The run is recorded as 'running' before the search starts, and
    // finished in one transaction with its violations and coverage.
    const tty = process.stderr.isTTY === true;
    const printProgress = throttledProgress(tty ? 0 : PIPE_PROGRESS_MS, (p) => err(progressLine(p)));
    const { runId, result: r, ids, traces } = await exploreAndRecord(store, {
      command: redactUrls(['check', ...process.argv.slice(3)].join(' ')),
      variant,
      modelName: model.name,
      bounds,
      given,
      depth,
      stopAtFirst,
      fromTexts,
      ...(only !== undefined ? { only } : {}),
      ...(o.checkImmutability ? { options: { checkImmutability: true } } : {}),
      parallel,
      onStart: (id) => {
        if (!o.json)
          out(
            `mmcheck check: model ${model.name}, depth ${depth}, ${boundsText(bounds)}, ${redis ? `workers on Redis ${redis.display}` : `${workers} worker${workers === 1 ? '' : 's'}`}` +
              `${resume ? `, resuming run ${resume.runId}` : ''} (run ${id})`,
          );
      },
      onProgress: (p) => {
        printProgress(p);
        if (o.json) event({ event: 'progress', ...p });
      },
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
          trace: traces[i],
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
        workers,
        peakRssMb: r.peakRssMb,
        ...(r.memoryLimit !== undefined ? { memoryLimit: r.memoryLimit } : {}),
        ...(r.checkpoint !== undefined ? { checkpoint: r.checkpoint, checkpointDepth: (resume?.checkpoint.fromPrefix ?? fromTexts.length) + r.checkpointLevel! } : {}),
        ...(resume ? { resumedFrom: resume.runId } : {}),
        violations: ids,
      });
    } else {
      // The start state is distinct but was not generated by a step: at depth 1
      // there is one more distinct state than generated ones (issue 14).
      out(
        `${num(r.generated)} states generated, ${num(r.distinct)} distinct states (the start state included), depth reached ${r.depthReached}, ` +
          `${seconds.toFixed(1)} s, ${num(r.statesPerSec)} states/s`,
      );
      out(`outcome: ${r.outcome}${r.exhausted ? ' (every reachable state explored)' : ''}`);
      out('coverage (fired / new states):');
      const kinds = Object.keys(r.coverage);
      const w = Math.max(0, ...kinds.map((k) => k.length));
      for (const k of kinds) out(`  ${k.padEnd(w)}  ${num(r.coverage[k]!.fired)} / ${num(r.coverage[k]!.newStates)}`);
      out(`never fired: ${r.neverFired.length > 0 ? r.neverFired.join(', ') : 'none'}`);
      out(`fingerprint collision probability: ${r.collisionProbability.toExponential(1)} (${num(r.distinct)} states, 64-bit fingerprints: n^2/2^65)`);
      if (r.checkpoint !== undefined) {
        const at = (resume?.checkpoint.fromPrefix ?? fromTexts.length) + r.checkpointLevel!;
        out(`checkpoint: ${r.checkpoint} (depth ${at}); continue with: mmcheck check --resume ${runId} --depth ${Math.max(depth, at + 1)}${o.db === DEFAULT_DB_PATH ? '' : ` --db ${o.db}`}`);
      }
      r.violations.forEach((v, i) => {
        out();
        out(`violation ${ids[i]}: ${v.property} at depth ${v.depth}`);
        for (const d of v.details) out(`  ${d}`);
        for (const l of traceLines(traces[i]!, ids[i]!, o.db)) out(l);
      });
      out();
      out(verdictLine(r, model.properties.length, seconds, ids, o.db === DEFAULT_DB_PATH ? '' : ` --db ${o.db}`));
    }
    if (r.memoryLimit !== undefined) {
      err(`mmcheck: ${r.memoryLimit}; run ${runId} recorded as interrupted with what was found`);
      return EXIT.internal;
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

