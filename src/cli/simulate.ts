// `mmcheck simulate`: seeded random and swarm walks on a pool of worker
// threads (src/engine/simulate.ts), past the depth an exhaustive check
// reaches; every violation found is shrunk (src/cli/shrink.ts) and stored
// with the trace it was shrunk from, replayable by `mmcheck replay`.
import { availableParallelism } from 'node:os';
import { randomInt } from 'node:crypto';
import { setAutoFreeze } from 'immer';
import { replayTexts } from '../engine/explorer.ts';
import { checkProperties } from '../engine/model.ts';
import { simulate, type SimulateProgress, type SimulateResult } from '../engine/simulate.ts';
import { recordedModelSpec } from '../../models/variants/load.ts';
import { openStore } from '../store/db.ts';
import { mmModelSpec } from './model-spec.ts';
import { DistributedError, parseRedisUrl, redactUrls } from '../engine/redis.ts';
import { simulateDistributed } from '../engine/simulate-redis.ts';
import { identityOf, walkWorkerData, type WalkSpec } from './distributed.ts';
import type { MmSpec } from './model-spec.ts';
import { boundsText } from './exploration.ts';
import { DEFAULT_EXHAUSTIVE_S, exhaustiveLine, shrinkViolation, shrunkRecord, type Shrunk } from './shrink.ts';
import { EXIT, ResultError, UsageError, type BoundOptions, parseCount, parseBounds, parsePropertyList, makeModel, readOps, out, err, event, num, traceLines } from './common.ts';

/** Longest walk without --depth. */
import { DEFAULT_WALK_DEPTH } from './common.ts';
export { DEFAULT_WALK_DEPTH };
/** Time budget without --time or --walks, in seconds. */
export const DEFAULT_SIMULATE_S = 60;

export interface SimulateOptions extends BoundOptions {
  model: string;
  depth?: string;
  time?: string;
  walks?: string;
  seed?: string;
  workers?: string;
  from?: string;
  continue?: boolean;
  properties?: string;
  /** commander's --no-swarm: false when given. */
  swarm?: boolean;
  /** commander's --no-milestones: false when given. */
  milestones?: boolean;
  exhaustiveTime?: string;
  /** Run the walks on `mmcheck worker` processes through this Redis (src/engine/simulate-redis.ts). */
  redis?: string;
  db: string;
  json?: boolean;
}

export function simulateProgressLine(p: SimulateProgress): string {
  return `Simulate: ${num(p.walks)} walks, ${num(p.states)} states (${num(p.statesPerSec)} s/s)${p.milestones > 0 ? `, ${num(p.milestones)} milestones` : ''}, ${p.found} properties violated, ${(p.elapsedMs / 1000).toFixed(0)} s`;
}

export async function cmdSimulate(o: SimulateOptions): Promise<number> {
  // 1. Everything that can be wrong with the input, before the store is written.
  const workers = parseCount('workers', o.workers, 1) ?? availableParallelism();
  const depth = parseCount('depth', o.depth, 1) ?? DEFAULT_WALK_DEPTH;
  const walks = parseCount('walks', o.walks, 1);
  let timeS = parseCount('time', o.time, 1);
  if (walks === undefined && timeS === undefined) timeS = DEFAULT_SIMULATE_S;
  const seedGiven = parseCount('seed', o.seed, 0);
  const seed = seedGiven ?? randomInt(2 ** 32);
  const exhaustiveS = parseCount('exhaustive-time', o.exhaustiveTime, 0) ?? DEFAULT_EXHAUSTIVE_S;
  const swarm = o.swarm !== false;
  const stopAtFirst = !o.continue;
  const variant = recordedModelSpec(o.model);
  const { given, bounds } = parseBounds(o);
  const only = parsePropertyList(o.properties);
  // Milestones need the other properties checked: the model keeps them all, and `only` is what is reported.
  const milestones = only !== undefined && o.milestones !== false;
  const targets = milestones ? only : undefined;
  const fromTexts = o.from !== undefined ? readOps(o.from, '--from') : [];
  // --redis: checked now (bad input, exit 2); never printed or stored with its credentials.
  const redis = o.redis !== undefined ? parseRedisUrl(o.redis) : undefined;
  setAutoFreeze(false);
  const model = await makeModel(variant, given, milestones ? undefined : only);
  const root = fromTexts.length > 0 ? replayTexts(model, model.initial(), fromTexts).states.at(-1)! : model.initial(); // ParseError: exit 2

  const store = openStore(o.db);
  try {
    const runId = store.startRun({
      command: redactUrls(['simulate', ...process.argv.slice(3)].join(' ')),
      model: 'mm',
      variant,
      bounds: { ...bounds, depth, ...(fromTexts.length > 0 ? { from: fromTexts } : {}), seed, swarm, ...(targets ? { milestones: true } : {}), ...(walks !== undefined ? { walks } : {}), ...(timeS !== undefined ? { time: timeS } : {}) },
      workers,
      maxDepth: depth,
      seed: String(seed),
    });
    // Ctrl-C (or SIGTERM) stops the walks, then the shrinking; a second one records the run and exits.
    let interrupts = 0;
    let lastProgress: SimulateProgress | undefined;
    const onSignal = (): void => {
      interrupts++;
      if (interrupts === 1) {
        err('interrupted: stopping the walks and recording the run (Ctrl-C again to abort now)');
        return;
      }
      store.finishRun(runId, {
        outcome: 'interrupted',
        generated: lastProgress?.states ?? 0,
        distinct: 0,
        depthReached: 0,
        durationMs: lastProgress?.elapsedMs ?? 0,
        walks: lastProgress?.walks ?? 0,
        error: 'aborted by a second interrupt',
      });
      err(`mmcheck: aborted by a second interrupt (run ${runId} recorded as interrupted)`);
      process.exit(EXIT.interrupted);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const budget = [walks !== undefined ? `${num(walks)} walks` : '', timeS !== undefined ? `${timeS} s` : ''].filter((x) => x).join(' or ');
    if (!o.json)
      out(`mmcheck simulate: model ${model.name}, walks of up to ${depth} operations, ${boundsText(bounds)}, ${swarm ? 'swarm' : 'uniform'}${targets ? ', milestones' : ''}, budget ${budget}, seed ${seed}, ${redis ? `workers on Redis ${redis.display}` : `${workers} worker${workers === 1 ? '' : 's'}`} (run ${runId})`);
    else event({ event: 'start', run: runId, model: model.name, seed, depth, workers, swarm, milestones });

    const tty = process.stderr.isTTY === true;
    let r: SimulateResult;
    const shrunk: Shrunk[] = [];
    try {
      // A --from state that already violates: nothing to walk.
      const atRoot = checkProperties(model, root).filter((v) => targets === undefined || targets.includes(v.property));
      if (atRoot.length > 0) {
        r = { outcome: 'violation', walks: 0, states: 0, milestones: 0, hits: [], elapsedMs: 0, statesPerSec: 0, startupMs: 0, workers };
        const props = [...new Set(atRoot.map((v) => v.property))];
        for (const p of stopAtFirst ? props.slice(0, 1) : props)
          r.hits.push({ walk: -1, property: p, details: atRoot.filter((v) => v.property === p).map((v) => v.detail), trace: [], fingerprint: '' });
      } else {
        // The same walks whichever runs them: threads here, or worker processes on Redis.
        const modelSpec: MmSpec = { variant, bounds: given, ...(only && !milestones ? { only } : {}) };
        const spec: MmSpec & WalkSpec = { ...modelSpec, swarm, fromTexts };
        const walkOptions = {
          seed,
          depth,
          ...(walks !== undefined ? { walks } : {}),
          ...(timeS !== undefined ? { timeMs: timeS * 1000 } : {}),
          swarm,
          stopAtFirst,
          ...(targets ? { targets } : {}),
          shouldStop: () => interrupts > 0,
          onProgress: (p: SimulateProgress) => {
            lastProgress = p;
            if (tty) err(simulateProgressLine(p));
            if (o.json) event({ event: 'progress', ...p });
          },
        };
        r = redis
          ? await simulateDistributed({ ...walkOptions, target: redis, spec, identity: identityOf(variant), onNote: (m) => err(`mmcheck: ${m}`) })
          : await simulate({ ...walkOptions, workers, worker: walkWorkerData(mmModelSpec(modelSpec), spec) });
      }
      // 2. Shrink each violation (the --from prefix is part of the trace: it may shrink too).
      for (const h of r.hits) {
        const trace = [...fromTexts, ...h.trace];
        shrunk.push(await shrinkViolation({ variant, bounds, model, property: h.property, trace, workers, exhaustiveMs: interrupts > 0 ? 0 : exhaustiveS * 1000, shouldStop: () => interrupts > 0 }));
      }
    } catch (e) {
      store.finishRun(runId, { outcome: 'error', generated: lastProgress?.states ?? 0, distinct: 0, depthReached: 0, durationMs: lastProgress?.elapsedMs ?? 0, error: (e as Error).message.split('\n')[0]! });
      // Redis unreachable or lost: a resource failure, said as it is (exit 3).
      if (e instanceof DistributedError) throw new ResultError(`${e.message} (run ${runId} recorded as error)`, EXIT.internal);
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }

    // 3. Record the run and its shrunk violations in one transaction.
    const outcome = r.outcome === 'interrupted' || interrupts > 0 ? 'interrupted' : shrunk.length > 0 ? 'violation' : 'depth-reached';
    const ids = store.finishRun(runId, {
      outcome,
      generated: r.states,
      distinct: 0,
      depthReached: Math.max(0, ...shrunk.map((s) => s.original.length)),
      durationMs: r.elapsedMs,
      walks: r.walks,
      violations: r.hits.map((h, i) => shrunkRecord(model.name, h.property, shrunk[i]!)),
    });

    // 4. The report.
    const seconds = r.elapsedMs / 1000;
    if (o.json) {
      r.hits.forEach((h, i) => {
        const s = shrunk[i]!;
        event({ event: 'violation', id: ids[i], property: h.property, walk: h.walk, swarm: h.swarm, details: s.details, trace: s.trace, original: s.original, shrink: s.info });
      });
      event({ event: 'done', run: runId, outcome, walks: r.walks, states: r.states, milestones: r.milestones, seconds, statesPerSec: r.statesPerSec, seed, workers: r.workers, violations: ids });
    } else {
      r.hits.forEach((h, i) => {
        const s = shrunk[i]!;
        out();
        out(`violation ${ids[i]}: ${h.property}, ${h.walk >= 0 ? `walk ${h.walk}` : 'the --from state'}${h.swarm ? ` (swarm: ${h.swarm})` : ''}`);
        for (const d of s.details) out(`  ${d}`);
        out(`  shrunk from ${s.original.length} to ${s.info.ddLength} operations (${num(s.info.candidates)} candidates, ${s.info.seconds.toFixed(1)} s)${s.info.ddLength !== s.trace.length ? `, then to ${s.trace.length}` : ''}`);
        for (const l of traceLines(s.trace, ids[i]!, o.db)) out(l);
        out(`  ${exhaustiveLine(s.info.exhaustive)}`);
        out(`  original: ${s.original.join('; ')}`);
      });
      if (r.hits.length > 0) out();
      const verdict = shrunk.length > 0 ? `${shrunk.length} propert${shrunk.length === 1 ? 'y' : 'ies'} violated` : outcome === 'interrupted' ? 'interrupted, no violation' : 'no violation';
      out(`simulate: ${verdict} in ${num(r.walks)} walks${targets ? ` (${num(r.milestones)} reached a milestone)` : ''}, ${num(r.states)} states visited, ${seconds.toFixed(1)} s (${num(r.statesPerSec)} states/s), seed ${seed}`);
    }
    if (outcome === 'interrupted') {
      err(`interrupted; run ${runId} recorded as interrupted`);
      return EXIT.interrupted;
    }
    return shrunk.length > 0 ? EXIT.violation : EXIT.ok;
  } finally {
    store.close();
  }
}
