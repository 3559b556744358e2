// A trace as a picture, in the format the command line asks for: DOT or SVG
// of one step (the last by default, with the violation marked), or the
// whole trace as one HTML page.
import type { State } from '../../models/mm/state.ts';
import { traceDot, type PictureViolation, type TraceStep } from './dot.ts';
import { traceHtml } from './html.ts';
import { renderSvg } from './svg.ts';

export const PICTURE_FORMATS = ['dot', 'svg', 'html'] as const;
export type PictureFormat = (typeof PICTURE_FORMATS)[number];

export interface TracePicture {
  title: string;
  /** The operations; states has one more entry (the initial state first). */
  texts: readonly string[];
  states: readonly State[];
  violations: PictureViolation[];
  pages?: number;
  /** For dot and svg: the step to draw (0 = initial state); the last by default. */
  step?: number;
}

export function traceSteps(texts: readonly string[], states: readonly State[]): TraceStep[] {
  return states.map((state, i) => ({ text: i === 0 ? 'initial state' : texts[i - 1]!, state }));
}

/** Render; throws RangeError for a step outside the trace. */
export async function renderTracePicture(format: PictureFormat, t: TracePicture): Promise<string> {
  const steps = traceSteps(t.texts, t.states);
  const opts = t.pages !== undefined ? { pages: t.pages } : {};
  if (format === 'html') return traceHtml({ title: t.title, steps, violations: t.violations, ...opts });
  const step = t.step ?? steps.length - 1;
  if (!Number.isInteger(step) || step < 0 || step >= steps.length) throw new RangeError(`--step ${step}: the trace has steps 0..${steps.length - 1}`);
  // traceDot marks the violation on the last step only: draw up to the chosen step.
  const dots = traceDot(steps.slice(0, step + 1), step === steps.length - 1 ? t.violations : [], opts);
  const dot = dots[dots.length - 1]!;
  return format === 'dot' ? dot + '\n' : renderSvg(dot);
}
