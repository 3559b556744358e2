// `mmcheck list`, `properties`, `models`.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { builtinVariants, MAINLINE } from '../../models/variants/registry.ts';
import { isVariantFile } from '../../models/variants/load.ts';
import { DEFAULT_BOUNDS } from '../../models/mm/model.ts';
import { openStore, type RunRow, type Store } from '../store/db.ts';
import { EXIT, parseCount, makeModel, out, num, boundsText, type Bounds } from './common.ts';

type StoredBounds = Partial<Bounds> & { modelName?: string; from?: string[]; depth?: number; resumedFrom?: number };

/**
 * A run's model by the name its violations are stored under: recorded with
 * the run; for runs recorded before that, a variant file's name without its
 * extension (the convention of the files in this repository).
 */
export function runModelName(variant: string, b: StoredBounds): string {
  if (b.modelName !== undefined) return b.modelName;
  return isVariantFile(variant) ? basename(variant).replace(/\.(ts|mts|js|mjs)$/, '') : variant;
}

/** What a run explored: its bounds (the defaults filled in, as the run used them) and its --from prefix. */
export function runBoundsText(r: RunRow): string {
  const b = JSON.parse(r.bounds) as StoredBounds;
  const bounds = { ...DEFAULT_BOUNDS } as Bounds;
  for (const k of Object.keys(DEFAULT_BOUNDS) as (keyof Bounds)[]) if (b[k] !== undefined) (bounds as unknown as Record<string, unknown>)[k] = b[k];
  const from = b.from !== undefined && b.from.length > 0 ? `, from "${b.from.join('; ')}"` : '';
  const resumed = b.resumedFrom !== undefined ? `, resuming run ${b.resumedFrom}` : '';
  const granularity = bounds.granularity === 'lock' ? '' : ', granularity syscall';
  return `${boundsText(bounds)}${granularity}${from}${resumed}`;
}

// ---------------------------------------------------------------- list, properties, models

export function cmdList(o: { db: string; limit: string; json?: boolean }): number {
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
            runs: runs.map((r) => {
              const bounds = JSON.parse(r.bounds) as StoredBounds;
              return { ...r, modelName: runModelName(r.variant, bounds), bounds, boundsText: runBoundsText(r) };
            }),
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
    // Two runs of one model differ by their bounds: print them under each run (issue 14).
    for (const r of runs) {
      out(
        `  ${String(r.id).padStart(4)}  ${r.started_at.replace('T', ' ').slice(0, 19)}  ${runModelName(r.variant, JSON.parse(r.bounds) as StoredBounds)}  depth ${r.max_depth ?? '?'}  ` +
          `${r.outcome}  ${r.walks !== null ? `${num(r.walks)} walks  ${num(r.generated)} states  seed ${r.seed}` : `${num(r.generated)} generated  ${num(r.distinct_states)} distinct`}  ${(r.duration_ms / 1000).toFixed(1)} s` +
          (r.error ? `  (${r.error})` : ''),
      );
      out(`        ${runBoundsText(r)}`);
    }
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

export async function cmdProperties(o: { model: string; json?: boolean }): Promise<number> {
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

export function cmdModels(o: { json?: boolean }): number {
  const rows = [{ name: MAINLINE, base: '', description: 'Linux 7.x mainline, as in docs/kernel-semantics.md' }, ...builtinVariants().map((v) => ({ name: v.name, base: v.base, description: v.description }))];
  if (o.json) out(JSON.stringify(rows));
  else for (const r of rows) out(`${r.name.padEnd(28)} ${r.base ? `(on ${r.base}) ` : ''}${r.description}`);
  return EXIT.ok;
}

