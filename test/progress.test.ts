// Progress lines in a pipe or CI log (src/cli/progress.ts): by the reports' own clock.
import { describe, expect, it } from 'vitest';
import type { Progress } from '../src/engine/explorer.ts';
import { PIPE_PROGRESS_MS, throttledProgress } from '../src/cli/progress.ts';

const at = (elapsedMs: number): Progress => ({ depth: 1, generated: 0, distinct: 0, queue: 0, statesPerSec: 0, elapsedMs, heapMb: 0 });

describe('progress when stderr is not a terminal', () => {
  it('one line every PIPE_PROGRESS_MS of search, the first after that long', () => {
    const printed: number[] = [];
    const sink = throttledProgress(PIPE_PROGRESS_MS, (p) => printed.push(p.elapsedMs));
    for (let t = 3000; t <= 45_000; t += 3000) sink(at(t));
    expect(printed).toEqual([12_000, 24_000, 36_000]);
    expect(PIPE_PROGRESS_MS).toBeLessThanOrEqual(60_000);
  });

  it('on a terminal, every report', () => {
    const printed: number[] = [];
    const sink = throttledProgress(0, (p) => printed.push(p.elapsedMs));
    for (const t of [3000, 6000, 9000]) sink(at(t));
    expect(printed).toEqual([3000, 6000, 9000]);
  });
});
