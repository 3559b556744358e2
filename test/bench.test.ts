import { describe, expect, it } from 'vitest';
import { medianBy, pairRate } from '../src/cli/bench.ts';

describe("the bench's pair rate (two searches at once)", () => {
  it('counts only the window in which both run, interpolating between progress samples', () => {
    // A: 100/s from 0 to 2 s. B: starts at 0.5 s, 50/s until 1.5 s, then 100/s (alone after 2 s) until 3 s.
    const a = { progress: [0, 0, 1000, 100, 2000, 200] };
    const b = { progress: [500, 0, 1500, 50, 3000, 200] };
    // Window 0.5-2 s: A generates 150, B 100 (50 by 1.5 s, then a third of the next 150).
    expect(pairRate([a, b])).toBeCloseTo(250 / 1.5, 9);
    expect(pairRate([b, a])).toBeCloseTo(250 / 1.5, 9);
  });

  it('does not count the slower search alone at the end at its unshared speed', () => {
    // Both at 40/s while they share the machine; the faster ends at 10 s, the slower then runs alone at 60/s.
    const fast = { progress: [0, 0, 5000, 250, 10_000, 500] };
    const slow = { progress: [0, 0, 10_000, 400, 12_000, 520] };
    expect(pairRate([fast, slow])).toBeCloseTo(50 + 40, 9);
    // The sum of their averages would say 50 + 520 / 12 = 93.3.
    expect(500 / 10 + 520 / 12).toBeGreaterThan(93);
  });

  it('is NaN for searches that never run at once', () => {
    expect(pairRate([{ progress: [0, 0, 1000, 10] }, { progress: [2000, 0, 3000, 10] }])).toBeNaN();
  });
});

describe("the bench's median", () => {
  it('takes the middle run by its key, whatever the order the runs came in', () => {
    const runs = [{ rate: 30 }, { rate: 10 }, { rate: 20 }];
    expect(medianBy(runs, (r) => r.rate)).toBe(runs[2]);
    expect(medianBy([5], (x) => x)).toBe(5);
    expect(medianBy([4, 1, 3, 2], (x) => x)).toBe(3);
  });
});
