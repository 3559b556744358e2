// `mmcheck gate`: explore a base model and a patch variant at the same
// bounds; fail when the patch violates a property the base keeps
// (DESIGN.md §6). Both runs are recorded; a property the base already
// violates is reported, not blamed on the patch.
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { ALL_PROPERTIES } from '../../properties/index.ts';
import { replayTexts } from '../engine/explorer.ts';
import { recordedModelSpec } from '../../models/variants/load.ts';
import { openStore } from '../store/db.ts';
import { parseRedisUrl, redactUrls } from '../engine/redis.ts';
import { boundsText, exploreAndRecord, type RecordedRun } from './exploration.ts';
import { DEFAULT_CHECK_DEPTH, EXIT, UsageError, type BoundOptions, err, lockPointNote, makeModel, num, out, parseBounds, parseCount, readOps, traceLines } from './common.ts';

export interface GateOptions extends BoundOptions {
  base: string;
  patch: string;
  depth?: string;
  from?: string;
  db: string;
  json?: boolean;
  junit?: string;
  workers?: string;
  checkImmutability?: boolean;
  /** Explore both models on `mmcheck worker` processes through this Redis (src/engine/distributed.ts). */
  redis?: string;
}

export interface GateVerdict {
  property: string;
  /** 'kept' by both, 'blamed' on the patch, 'base' violated by the base too, 'fixed' violated only by the base. */
  status: 'kept' | 'blamed' | 'base' | 'fixed';
  patchViolation?: { id: number; depth: number; detail: string; trace: string[] };
  baseViolation?: { id: number; depth: number; detail: string };
}

/** Compare the two runs property by property. */
export function verdicts(base: RecordedRun, patch: RecordedRun): GateVerdict[] {
  return ALL_PROPERTIES.map((p) => {
    const bi = base.result.violations.findIndex((v) => v.property === p.id);
    const pi = patch.result.violations.findIndex((v) => v.property === p.id);
    const bv = base.result.violations[bi];
    const pv = patch.result.violations[pi];
    const status = pv && bv ? 'base' : pv ? 'blamed' : bv ? 'fixed' : 'kept';
    return {
      property: p.id,
      status,
      ...(pv ? { patchViolation: { id: patch.ids[pi]!, depth: pv.depth, detail: pv.detail, trace: patch.traces[pi]! } } : {}),
      ...(bv ? { baseViolation: { id: base.ids[bi]!, depth: bv.depth, detail: bv.detail } } : {}),
    };
  });
}

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A JUnit report: one test case per property. */
export function junitXml(patch: string, base: string, vs: GateVerdict[], seconds: number): string {
  const failures = vs.filter((v) => v.status === 'blamed').length;
  const skipped = vs.filter((v) => v.status === 'base').length;
  const cases = vs.map((v) => {
    const open = `    <testcase classname="mmcheck.gate.${xml(patch)}" name="${xml(v.property)}">`;
    if (v.status === 'blamed') {
      const pv = v.patchViolation!;
      return `${open}\n      <failure message="${xml(`${v.property} violated at depth ${pv.depth}: ${pv.detail}`)}">${xml(pv.trace.join('\n'))}</failure>\n    </testcase>`;
    }
    if (v.status === 'base') return `${open}\n      <skipped message="${xml(`violated by the base ${base} too`)}"/>\n    </testcase>`;
    return `${open}</testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${vs.length}" failures="${failures}" skipped="${skipped}" time="${seconds.toFixed(3)}">`,
    `  <testsuite name="mmcheck gate ${xml(patch)} against ${xml(base)}" tests="${vs.length}" failures="${failures}" skipped="${skipped}" time="${seconds.toFixed(3)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export async function cmdGate(o: GateOptions): Promise<number> {
  // Everything about the input is checked before the store is opened.
  const { given, bounds } = parseBounds(o);
  const depth = parseCount('depth', o.depth, 0) ?? DEFAULT_CHECK_DEPTH;
  const workers = parseCount('workers', o.workers, 1) ?? availableParallelism();
  const baseModel = await makeModel(o.base, given);
  const patchModel = await makeModel(o.patch, given);
  for (const m of [baseModel, patchModel]) {
    const note = lockPointNote(m);
    if (note !== undefined) err(`mmcheck: ${note}`);
  }
  const fromTexts = o.from !== undefined ? readOps(o.from, '--from') : [];
  if (fromTexts.length > 0) {
    replayTexts(baseModel, baseModel.initial(), fromTexts);
    replayTexts(patchModel, patchModel.initial(), fromTexts);
  }
  if (fromTexts.length > depth) throw new UsageError(`--from has ${fromTexts.length} operations, more than --depth ${depth}; raise --depth`);
  // --redis: checked now (bad input, exit 2); never printed or stored with its credentials.
  const redis = o.redis !== undefined ? { url: o.redis, display: parseRedisUrl(o.redis).display } : undefined;

  const store = openStore(o.db);
  try {
    const tty = process.stderr.isTTY === true;
    const explore = (variant: string, name: string): Promise<RecordedRun> =>
      exploreAndRecord(store, {
        command: redactUrls(['gate', ...process.argv.slice(3)].join(' ')),
        variant,
        modelName: name,
        bounds,
        given,
        depth,
        stopAtFirst: false,
        fromTexts,
        ...(o.checkImmutability ? { options: { checkImmutability: true } } : {}),
        // On the worker pool or the Redis workers, like check (no checkpoints: a gate is rerun whole).
        parallel: {
          workers,
          checkpointDir: join(dirname(o.db), 'checkpoints'),
          db: o.db,
          ...(redis ? { redis: { url: redis.url, onNote: (m: string) => err(`mmcheck: ${m}`) } } : {}),
        },
        onStart: (id) => {
          if (!o.json) out(`exploring ${name}${redis ? ` on workers on Redis ${redis.display}` : ''} (run ${id})`);
        },
        onProgress: (p) => {
          if (tty) err(`${name}: depth ${p.depth}, ${num(p.distinct)} distinct states, ${num(p.statesPerSec)} states/s`);
        },
      });
    const base = await explore(recordedModelSpec(o.base), baseModel.name);
    const patch = await explore(recordedModelSpec(o.patch), patchModel.name);
    const vs = verdicts(base, patch);
    const seconds = (base.result.elapsedMs + patch.result.elapsedMs) / 1000;
    if (o.junit !== undefined) writeFileSync(o.junit, junitXml(patchModel.name, baseModel.name, vs, seconds));
    const blamed = vs.filter((v) => v.status === 'blamed');
    const runSummary = (r: RecordedRun) => ({ run: r.runId, outcome: r.result.outcome, distinct: r.result.distinct, generated: r.result.generated, depthReached: r.result.depthReached });
    if (o.json) {
      out(JSON.stringify({ base: { model: baseModel.name, ...runSummary(base) }, patch: { model: patchModel.name, ...runSummary(patch) }, depth, bounds, from: fromTexts, verdicts: vs, pass: blamed.length === 0 }, null, 2));
    } else {
      out(`checked: depth ${depth}, ${boundsText(bounds)}${fromTexts.length > 0 ? `, from a ${fromTexts.length}-operation prefix` : ''}`);
      for (const [name, r] of [[baseModel.name, base], [patchModel.name, patch]] as const)
        out(`  ${name}: ${num(r.result.distinct)} distinct states, depth reached ${r.result.depthReached}, ${r.result.outcome}`);
      for (const v of vs.filter((x) => x.status === 'base'))
        out(`already violated by the base (not blamed): ${v.property} at depth ${v.baseViolation!.depth} (violation ${v.baseViolation!.id})`);
      for (const v of vs.filter((x) => x.status === 'fixed')) out(`violated by the base only: ${v.property} (violation ${v.baseViolation!.id})`);
      for (const v of blamed) {
        const pv = v.patchViolation!;
        out('');
        out(`FAIL ${v.property}: the patch violates it at depth ${pv.depth}, the base keeps it`);
        out(`  ${pv.detail}`);
        for (const l of traceLines(pv.trace, pv.id, o.db)) out(l);
      }
      out(blamed.length === 0 ? `PASS: ${patchModel.name} keeps every property ${baseModel.name} keeps` : `FAIL: ${blamed.length} propert${blamed.length === 1 ? 'y' : 'ies'} broken by ${patchModel.name}`);
    }
    return blamed.length > 0 ? EXIT.violation : EXIT.ok;
  } finally {
    store.close();
  }
}
