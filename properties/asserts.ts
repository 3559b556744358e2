// Records the model makes while running kernel paths: the kernel's own
// asserts (WARN/BUG) and merges that removed a VMA with vm_ops->close
// (kernel-semantics §7.1, §7.2, §1.2; bug-corpus §0.3 I8).
import type { Property } from '../src/engine/model.ts';
import type { State } from '../models/mm/state.ts';

/** Prefix of the s.warnings entry the model pushes when a merge removes a VMA that has vm_ops->close. */
export const CLOSE_REMOVED = 'close-removed:';

export const closeNeverRemoved: Property<State> = {
  id: 'close-never-removed',
  description: 'a VMA with vm_ops->close is never removed by a merge',
  rule: 'kernel-semantics §1.2 (can_merge_remove_vma), §7.2 (vma_expand: removable next has no ->close); bug-corpus §0.3 I8',
  when: 'always',
  check(s) {
    return s.warnings.filter((w) => w.startsWith(CLOSE_REMOVED)).map((w) => w.slice(CLOSE_REMOVED.length).trim() || w);
  },
};

/** Prefix of the s.warnings entry pushed when MREMAP_RELOCATE_ANON rewrites a folio that is not mapped exactly once. */
export const RELOCATE_SHARED = 'relocate-shared:';

export const relocateExclusive: Property<State> = {
  id: 'relocate-exclusive',
  description: 'MREMAP_RELOCATE_ANON only relocates folios mapped exactly once, by the moving VMA',
  rule: 'bug-corpus B4 ("relocation is allowed only if every folio in the range is mapped exactly once, by this VMA"); seed 002 relocate_anon_pte',
  when: 'always',
  check(s) {
    return s.warnings.filter((w) => w.startsWith(RELOCATE_SHARED)).map((w) => w.slice(RELOCATE_SHARED.length).trim() || w);
  },
};

/** Records that are properties of their own, not kernel asserts. */
const RECORDS = [CLOSE_REMOVED, RELOCATE_SHARED];

export const kernelAsserts: Property<State> = {
  id: 'kernel-asserts',
  description: 'no kernel WARN/BUG fires; the violation names the assert',
  rule: 'kernel-semantics §7.1, §7.2 (check_anon_vma_clone, unlink_anon_vmas, __page_check_anon_rmap, folio_move_anon_rmap, ...)',
  when: 'always',
  check(s) {
    return s.warnings.filter((w) => !RECORDS.some((r) => w.startsWith(r)));
  },
};
