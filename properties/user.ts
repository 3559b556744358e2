// What userspace sees (issue 13): the kernel model's page tables and folio
// contents against the reference model of what each process must read
// (models/mm/user.ts, Mm.user).
import type { Property } from '../src/engine/model.ts';
import { kernelRead } from '../models/mm/user.ts';
import { USER_SWAPPED, USER_ZERO, ZERO_PAGE, type Mm, type State } from '../models/mm/state.ts';
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

const NONE: UserMismatch[] = [];

/** The pages where what mm's process reads differs from what the syscalls it made promise. */
export function userMismatches(s: State): UserMismatch[] {
  let out: UserMismatch[] | undefined;
  for (const m of stateView(s).mms) {
    // Pages in VMAs, in order (the VMAs are sorted and disjoint), then the reference's pages past them.
    const user = m.user;
    let page = 0;
    for (const id of m.vmas) {
      const v = s.vmas[id]!;
      for (; page < v.start; page++) if (user[page] !== undefined) (out ??= []).push({ mm: m, page, expected: user[page], actual: undefined });
      for (; page < v.end; page++) {
        const expected = user[page];
        if (expected === undefined) {
          (out ??= []).push({ mm: m, page, expected, actual: kernelRead(s, m, page) });
          continue;
        }
        const pte = m.ptes[page];
        const actual = pte === undefined || pte.folio === ZERO_PAGE ? USER_ZERO : (s.folios[pte.folio]?.data[pte.sub] ?? NaN);
        if (expected !== actual && expected !== USER_SWAPPED) (out ??= []).push({ mm: m, page, expected, actual });
      }
    }
    for (; page < user.length; page++) if (user[page] !== undefined) (out ??= []).push({ mm: m, page, expected: user[page], actual: undefined });
  }
  return out ?? NONE;
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
