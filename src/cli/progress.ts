// When progress lines are printed. On a terminal every report (PROGRESS_MS);
// in a pipe or a CI log less often, but never silence: a long search with no
// output looks hung, and CI runners kill jobs that print nothing for ten
// minutes (issue 14). TLC prints one a minute; a log line every ten seconds
// costs nothing.
import type { Progress } from '../engine/explorer.ts';

export const PIPE_PROGRESS_MS = 10_000;

/** A progress sink that passes on a report when `everyMs` of search time passed since the last one it passed (by the reports' own clock). */
export function throttledProgress(everyMs: number, print: (p: Progress) => void): (p: Progress) => void {
  let last = 0;
  return (p) => {
    if (p.elapsedMs - last < everyMs) return;
    last = p.elapsedMs;
    print(p);
  };
}
