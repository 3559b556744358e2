// `mmcheck bugs`: every entry of the bug corpus (models/variants/corpus):
// the buggy variant must violate its property within the entry's bounds and
// the fixed variant must keep it at the same bounds.
import { availableParallelism } from 'node:os';
import { splitOps } from '../../models/mm/ops.ts';
import { BUG_CORPUS, BUG_CORPUS_PENDING, type BugEntry } from '../../models/variants/corpus/index.ts';
import { exploreJobOnPool } from './exploration.ts';
import { EXIT, PROGRESS_MS, UsageError, out, num, parseCount } from './common.ts';

export interface BugResult {
  id: string;
  property: string;
  buggy: string;
  fixed: string;
  /** Depth of the shortest violation of the property by the buggy variant, or null if none within the bounds. */
  foundDepth: number | null;
  trace: string[];
  buggyStates: number;
  /** The fixed variant kept the property over the same bounds. */
  fixedKeeps: boolean;
  fixedStates: number;
  fixedOutcome: string;
  seconds: number;
  pass: boolean;
}

/** Check one corpus entry: the buggy variant, then the fixed one, at the entry's bounds. */
export async function checkBug(e: BugEntry, workers: number): Promise<BugResult> {
  const t0 = performance.now();
  const fromTexts = e.from !== undefined ? splitOps(e.from) : [];
  const job = { bounds: e.bounds, depth: e.depth, stopAtFirst: true, fromTexts, progressMs: PROGRESS_MS, only: [e.property] };
  const buggy = await exploreJobOnPool({ ...job, variant: e.buggy }, workers);
  const fixed = await exploreJobOnPool({ ...job, variant: e.fixed }, workers);
  const v = buggy.violations[0];
  const fixedKeeps = fixed.violations.length === 0;
  return {
    id: e.id,
    property: e.property,
    buggy: e.buggy,
    fixed: e.fixed,
    foundDepth: v?.depth ?? null,
    trace: v !== undefined ? [...fromTexts, ...v.traceText] : [],
    buggyStates: buggy.distinct,
    fixedKeeps,
    fixedStates: fixed.distinct,
    fixedOutcome: fixed.outcome,
    seconds: (performance.now() - t0) / 1000,
    pass: v !== undefined && fixedKeeps,
  };
}

export async function cmdBugs(o: { only?: string; json?: boolean; traces?: boolean; workers?: string }): Promise<number> {
  const workers = parseCount('workers', o.workers, 1) ?? availableParallelism();
  const entries = o.only !== undefined ? BUG_CORPUS.filter((e) => e.id.toLowerCase() === o.only!.toLowerCase()) : [...BUG_CORPUS];
  if (entries.length === 0) {
    const pending = BUG_CORPUS_PENDING.find((p) => p.id.toLowerCase() === o.only!.toLowerCase());
    if (pending) throw new UsageError(`${pending.id} is not checkable yet: it needs ${pending.needs}`);
    throw new UsageError(`no corpus entry "${o.only}" (entries: ${BUG_CORPUS.map((e) => e.id).join(', ')})`);
  }
  const results: BugResult[] = [];
  if (!o.json) out(`${'id'.padEnd(8)} ${'property'.padEnd(26)} ${'found at'.padEnd(9)} ${'states'.padStart(9)}  ${'fixed keeps it'.padEnd(15)} ${'states'.padStart(9)} ${'seconds'.padStart(8)}`);
  for (const e of entries) {
    const r = await checkBug(e, workers);
    results.push(r);
    if (!o.json) {
      const found = r.foundDepth === null ? 'NOT FOUND' : `depth ${r.foundDepth}`;
      out(
        `${r.id.padEnd(8)} ${r.property.padEnd(26)} ${found.padEnd(9)} ${num(r.buggyStates).padStart(9)}  ${(r.fixedKeeps ? 'yes' : 'NO').padEnd(15)} ${num(r.fixedStates).padStart(9)} ${r.seconds.toFixed(1).padStart(8)}` +
          (r.pass ? '' : '   FAIL'),
      );
      if (o.traces && r.trace.length > 0) out(`         ${r.trace.join('; ')}`);
    }
  }
  const failed = results.filter((r) => !r.pass);
  if (o.json) out(JSON.stringify({ results, pending: BUG_CORPUS_PENDING }, null, 2));
  else {
    if (o.only === undefined) for (const p of BUG_CORPUS_PENDING) out(`${p.id.padEnd(8)} not checkable yet: needs ${p.needs}`);
    out(failed.length === 0 ? `all ${results.length} checked entries pass` : `${failed.length} of ${results.length} entries FAIL: ${failed.map((r) => r.id).join(', ')}`);
  }
  return failed.length === 0 ? EXIT.ok : EXIT.violation;
}
