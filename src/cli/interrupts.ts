// Ctrl-C, SIGTERM: the first stops the search cleanly, a later one aborts.
// Signals that arrive together are one interrupt: `timeout -s INT` and a
// terminal's Ctrl-C both deliver SIGINT to the process and to its process
// group, so the same interrupt can arrive twice within microseconds, and a
// CI runner may send SIGTERM and SIGINT back to back (issue 14: runs aborted
// "by a second interrupt" that nobody gave).

/** Signals closer than this to the first one are the same interrupt (MMCHECK_SAME_INTERRUPT_MS: tests widen it to stay off the clock). */
export const SAME_INTERRUPT_MS = Number(process.env.MMCHECK_SAME_INTERRUPT_MS) || 1000;

export type InterruptAction = 'stop' | 'same' | 'abort';

export class Interrupts {
  private first: number | undefined;

  constructor(private readonly sameWithinMs = SAME_INTERRUPT_MS) {}

  /** What a signal received at time `now` (ms, any monotonic clock) asks for. */
  signal(now: number): InterruptAction {
    if (this.first === undefined) {
      this.first = now;
      return 'stop';
    }
    return now - this.first < this.sameWithinMs ? 'same' : 'abort';
  }
}
