// `mmcheck check`: explore, record the run, print the summary.
import { replayTexts } from '../engine/explorer.ts';
import { recordedModelSpec } from '../../models/variants/load.ts';
import { openStore } from '../store/db.ts';
import { exploreAndRecord, progressLine, boundsText } from './exploration.ts';
import { DEFAULT_CHECK_DEPTH, EXIT, UsageError, type BoundOptions, parseCount, parseBounds, parsePropertyList, makeModel, readOps, out, err, event, num, traceLines } from './common.ts';

// ---------------------------------------------------------------- check

export interface CheckOptions extends BoundOptions {
  model: string;
  depth?: string;
  from?: string;
  continue?: boolean;
  properties?: string;
  db: string;
  json?: boolean;
}

/** What the exploration worker needs to rebuild the model and the start state. */
export async function cmdCheck(o: CheckOptions): Promise<number> {
  // 1. Everything that can be wrong with the input is found before the store is opened.
  const variant = recordedModelSpec(o.model);
  const { given, bounds } = parseBounds(o);
  const depth = parseCount('depth', o.depth, 0) ?? DEFAULT_CHECK_DEPTH;
  const only = parsePropertyList(o.properties);
  const model = await makeModel(variant, given, only);
  const fromTexts = o.from !== undefined ? readOps(o.from, '--from') : [];
  if (fromTexts.length > 0) replayTexts(model, model.initial(), fromTexts); // ParseError: exit 2
  if (fromTexts.length > depth)
    throw new UsageError(`--from has ${fromTexts.length} operations, more than --depth ${depth}; raise --depth`);

  // 2. The run is recorded as 'running' before the search starts, and
  // finished in one transaction with its violations and coverage.
  const store = openStore(o.db);
  try {
    const tty = process.stderr.isTTY === true;
    const { runId, result: r, ids, traces } = await exploreAndRecord(store, {
      command: ['check', ...process.argv.slice(3)].join(' '),
      variant,
      modelName: model.name,
      bounds,
      given,
      depth,
      stopAtFirst: !o.continue,
      fromTexts,
      ...(only !== undefined ? { only } : {}),
      onStart: (id) => {
        if (!o.json) out(`mmcheck check: model ${model.name}, depth ${depth}, ${boundsText(bounds)} (run ${id})`);
      },
      onProgress: (p) => {
        if (tty) err(progressLine(p));
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
        for (const l of traceLines(traces[i]!, ids[i]!, o.db)) out(l);
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

