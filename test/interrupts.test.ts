// Signals that arrive together are one interrupt (src/cli/interrupts.ts).
import { describe, expect, it } from 'vitest';
import { Interrupts, SAME_INTERRUPT_MS } from '../src/cli/interrupts.ts';

describe('interrupts', () => {
  it('the first signal stops; one delivered again to the process group at once is the same interrupt', () => {
    const i = new Interrupts();
    expect(i.signal(10_000)).toBe('stop');
    expect(i.signal(10_000)).toBe('same');
    expect(i.signal(10_000 + SAME_INTERRUPT_MS - 1)).toBe('same');
  });

  it('a signal given later, while the search is still stopping, aborts', () => {
    const i = new Interrupts();
    expect(i.signal(0)).toBe('stop');
    expect(i.signal(SAME_INTERRUPT_MS)).toBe('abort');
    expect(i.signal(SAME_INTERRUPT_MS * 5)).toBe('abort');
  });
});
