// `mmcheck replay`: re-execute a stored violation and confirm it.
import { traceViolations, ParseError } from '../engine/model.ts';
import { replayTexts } from '../engine/explorer.ts';
import { DEFAULT_BOUNDS } from '../../models/mm/model.ts';
import type { State } from '../../models/mm/state.ts';
import type { Op } from '../../models/mm/ops.ts';
import { openStore, type RunRow } from '../store/db.ts';
import { stateToJson } from '../report/json.ts';
import { renderDiff, renderState } from '../report/text.ts';
import { EXIT, type Bounds, type MmModel, type PictureOptions, UsageError, ResultError, boundsFor, makeModel, out, indent, violationLines, checkPictureOptions, isPictureFormat, writePicture } from './common.ts';

// ---------------------------------------------------------------- replay

export function parseId(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`violation id must be a positive whole number, got "${text}"`);
  return Number(text);
}

/** The bounds a run recorded (its JSON also holds depth, from, seed...). */
export function boundsOfRun(run: RunRow): Partial<Bounds> {
  const stored = JSON.parse(run.bounds) as Partial<Bounds>;
  const bounds: Partial<Bounds> = {};
  for (const k of Object.keys(DEFAULT_BOUNDS) as (keyof Bounds)[]) if (stored[k] !== undefined) (bounds as Record<string, unknown>)[k] = stored[k];
  return bounds;
}

/**
 * The model that found violation `id` in `run`: a built-in name or the
 * variant file it was loaded from, with the run's bounds (raised to what
 * `trace` needs, when given: a replay is never limited by the bounds).
 */
export async function modelOfRun(run: RunRow, id: number, only?: readonly string[], trace?: readonly string[]): Promise<MmModel> {
  try {
    return await makeModel(run.variant, trace ? boundsFor(boundsOfRun(run), [...trace]) : boundsOfRun(run), only);
  } catch (e) {
    throw new ResultError(`violation ${id} was found by model "${run.variant}", which cannot be loaded now: ${(e as Error).message}`, EXIT.internal);
  }
}

export interface ReplayOptions extends PictureOptions {
  db: string;
  format: string;
}

export async function cmdReplay(idText: string, o: ReplayOptions): Promise<number> {
  const id = parseId(idText);
  const step = checkPictureOptions(o, ['text', 'json']);
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
  const texts = v.trace === '' ? [] : v.trace.split('\n');
  const model = await modelOfRun(run, id, undefined, texts);
  let states: State[];
  let actions: Op[];
  try {
    ({ states, actions } = replayTexts(model, model.initial(), texts));
  } catch (e) {
    if (e instanceof ParseError)
      throw new ResultError(`violation ${id} (${v.property}) no longer reproduces: its trace does not replay: ${e.message} (the model changed since run ${run.id})`, EXIT.internal);
    throw e;
  }
  const perState = traceViolations(model, states, actions);
  const final = states[states.length - 1]!;
  const finalViolations = perState[perState.length - 1]!;
  const reproduced = finalViolations.some((x) => x.property === v.property);

  if (isPictureFormat(o.format)) {
    await writePicture(o, {
      title: `violation ${v.id}: ${v.property} (model ${v.model})`,
      texts,
      states,
      violations: finalViolations.filter((x) => x.property === v.property),
      pages: model.bounds.pages,
      ...(step !== undefined ? { step } : {}),
    });
  } else if (o.format === 'json') {
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

