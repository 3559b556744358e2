// `mmcheck run`: execute operations and print the state and violations.
import { traceViolations } from '../engine/model.ts';
import { replayTexts } from '../engine/explorer.ts';
import { formatResult, splitOps } from '../../models/mm/ops.ts';
import { stateToJson } from '../report/json.ts';
import { renderDiff, renderState } from '../report/text.ts';
import { EXIT, UsageError, type BoundOptions, type PictureOptions, parseBounds, boundsFor, makeModel, readFileOps, out, indent, violationLines, checkPictureOptions, isPictureFormat, writePicture } from './common.ts';

// ---------------------------------------------------------------- run

export interface RunOptions extends BoundOptions, PictureOptions {
  file?: string;
  model: string;
  json?: boolean;
  steps?: boolean;
  format: string;
}

export async function cmdRun(opsArg: string | undefined, o: RunOptions): Promise<number> {
  const variant = o.model;
  const { given } = parseBounds(o);
  if (opsArg !== undefined && o.file !== undefined) throw new UsageError('give the operations either as an argument or with --file, not both');
  if (opsArg === undefined && o.file === undefined) throw new UsageError('no operations: give them as an argument (e.g. "P0 mmap 0 4; P0 fault 1 w") or with --file');
  const step = checkPictureOptions(o, ['text']);
  const texts = o.file !== undefined ? readFileOps(o.file) : splitOps(opsArg!);
  // The bounds options are accepted (scripts pass them) but only raise what the trace needs.
  const model = await makeModel(variant, boundsFor(given, texts));
  const { states, actions } = replayTexts(model, model.initial(), texts);
  const perState = traceViolations(model, states, actions);
  const final = states[states.length - 1]!;
  const finalViolations = perState[perState.length - 1]!;
  const anyViolation = perState.some((v) => v.length > 0);

  if (isPictureFormat(o.format)) {
    await writePicture(o, {
      title: `${model.name}: ${texts.length} operation${texts.length === 1 ? '' : 's'}`,
      texts,
      states,
      violations: finalViolations,
      pages: model.bounds.pages,
      ...(step !== undefined ? { step } : {}),
    });
  } else if (o.json) {
    const json: Record<string, unknown> = { ...stateToJson(final, finalViolations) };
    // Violations of intermediate states that the final state no longer shows.
    const earlier = perState.slice(0, -1).flatMap((vs, i) =>
      vs.map((v) => ({ step: i, operation: i === 0 ? null : texts[i - 1], property: v.property, detail: v.detail })),
    );
    if (earlier.length > 0) json.stepViolations = earlier;
    if (o.steps)
      json.steps = texts.map((t, i) => {
        const r = states[i + 1]!.result;
        return { operation: t, ...(r !== undefined ? { result: formatResult(r.ret) } : {}), violations: perState[i + 1] };
      });
    out(JSON.stringify(json, null, 2));
  } else {
    if (perState[0]!.length > 0) out(['initial state', ...violationLines(perState[0]!)].join('\n'));
    for (let i = 0; i < texts.length; i++) {
      const vs = perState[i + 1]!;
      const result = states[i + 1]!.result;
      if (o.steps) {
        out(`step ${i + 1}: ${texts[i]}${result !== undefined && result.ret !== 0 ? ` -> ${formatResult(result.ret)}` : ''}`);
        const d = renderDiff(states[i]!, states[i + 1]!);
        if (d) out(indent(d));
      }
      // Without --steps a failed syscall and the steps whose state violates something are named.
      if (!o.steps && result !== undefined && result.ret !== 0) out(`step ${i + 1}: ${texts[i]} -> ${formatResult(result.ret)}`);
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

