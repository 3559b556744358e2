// What userspace sees (issue 13): the kernel model's page tables and folio
// contents against the reference model of what each process must read
// (models/mm/user.ts, Mm.user).
import type { Property } from '../src/engine/model.ts';
import { kernelRead } from '../models/mm/user.ts';
import { USER_SWAPPED, USER_ZERO, type Mm, type State } from '../models/mm/state.ts';
import { stateView } from './view.ts';

/** A page's content in a violation: unmapped, zeros, swapped out, or a content id (vN). */
export function contentName(x: number | undefined): string {
  if (x === undefined) return 'unmapped';
  if (Number.isNaN(x)) return 'a freed folio';
  if (x === USER_ZERO) return 'zeros';
  if (x === USER_SWAPPED) return 'swapped-out content';
  return `v${x}`;
}

/** One mismatch between the reference model and the kernel model. */
export interface UserMismatch {
  mm: Mm;
  page: number;
  expected: number | undefined;
  actual: number | undefined;
}

/** The pages where what mm's process reads differs from what the syscalls it made promise. */
export function userMismatches(s: State): UserMismatch[] {
  const out: UserMismatch[] = [];
  for (const m of stateView(s).mms) {
    let hi = m.user.length;
    for (const id of m.vmas) hi = Math.max(hi, s.vmas[id]?.end ?? 0);
    for (let page = 0; page < hi; page++) {
      const expected = m.user[page];
      const actual = kernelRead(s, m, page);
      const ok = expected === USER_SWAPPED ? actual !== undefined : expected === actual;
      if (!ok) out.push({ mm: m, page, expected, actual });
    }
  }
  return out;
}

export const userView: Property<State> = {
  id: 'user-view',
  description: 'every process reads at every page what its syscalls promise: unmapped, zeros, or the last value it (or the parent it forked from) wrote there',
  rule:
    'POSIX meaning of mmap (zero pages), munmap (exactly [addr, addr+len)), mprotect (no content change), fork (a copy), a write (only the writer\'s page), mremap (contents move; DONTUNMAP leaves the source mapped and empty), exit; COW (§2.11) and fork copy (§2.7) keep processes apart; checked at quiescent states',
  when: 'quiescent',
  check: (s) =>
    userMismatches(s).map(
      (x) => `P${x.mm.id} page ${x.page}: expected ${contentName(x.expected)}, reads ${contentName(x.actual)}`,
    ),
};
