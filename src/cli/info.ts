// `mmcheck list`, `properties`, `models`.
import { existsSync } from 'node:fs';
import { builtinVariants, MAINLINE } from '../../models/variants/registry.ts';
import { openStore, type Store } from '../store/db.ts';
import { EXIT, parseCount, makeModel, out, num } from './common.ts';

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
          `${r.outcome}  ${r.walks !== null ? `${num(r.walks)} walks  ${num(r.generated)} states  seed ${r.seed}` : `${num(r.generated)} generated  ${num(r.distinct_states)} distinct`}  ${(r.duration_ms / 1000).toFixed(1)} s` +
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

