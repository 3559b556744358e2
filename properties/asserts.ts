// Records the model makes while running kernel paths: the kernel's own
// asserts (WARN/BUG) and merges that removed a VMA with vm_ops->close
// (kernel-semantics §7.1, §7.2, §1.2; bug-corpus §0.3 I8).
import type { Property } from '../src/engine/model.ts';
import { RECORD, type State } from '../models/mm/state.ts';

/** Prefixes of the model's records (models/mm/state.ts RECORD). */
export const CLOSE_REMOVED = RECORD.closeRemoved;

export const closeNeverRemoved: Property<State> = {
  id: 'close-never-removed',
  description: 'a VMA with vm_ops->close is never removed by a merge',
  rule: 'kernel-semantics §1.2 (can_merge_remove_vma), §7.2 (vma_expand: removable next has no ->close); bug-corpus §0.3 I8',
  when: 'always',
  check(s) {
    return s.warnings.filter((w) => w.startsWith(CLOSE_REMOVED)).map((w) => w.slice(CLOSE_REMOVED.length).trim() || w);
  },
};

export const RELOCATE_SHARED = RECORD.relocateShared;

export const relocateExclusive: Property<State> = {
  id: 'relocate-exclusive',
  description: 'MREMAP_RELOCATE_ANON only relocates folios mapped exactly once, by the moving VMA',
  rule: 'bug-corpus B4 ("relocation is allowed only if every folio in the range is mapped exactly once, by this VMA"); seed 002 relocate_anon_pte',
  when: 'always',
  check(s) {
    return s.warnings.filter((w) => w.startsWith(RELOCATE_SHARED)).map((w) => w.slice(RELOCATE_SHARED.length).trim() || w);
  },
};

export const FORK_REUSE = RECORD.forkReuse;

export const forkReuseRule: Property<State> = {
  id: 'fork-reuse-rule',
  description: 'a fork adopts an anon_vma only with num_active_vmas 0 and num_children < 2',
  rule: 'kernel-semantics §2.4 (maybe_reuse_anon_vma), §8 (2555283eb40d); bug-corpus I5',
  when: 'always',
  check(s) {
    return s.warnings.filter((w) => w.startsWith(FORK_REUSE)).map((w) => w.slice(FORK_REUSE.length).trim() || w);
  },
};

/** Records that are properties of their own, not kernel asserts. */
const RECORDS: readonly string[] = Object.values(RECORD);

export const kernelAsserts: Property<State> = {
  id: 'kernel-asserts',
  description: 'no kernel WARN/BUG fires; the violation names the assert',
  rule: 'kernel-semantics §7.1, §7.2 (check_anon_vma_clone, unlink_anon_vmas, __page_check_anon_rmap, folio_move_anon_rmap, ...)',
  when: 'always',
  check(s) {
    return s.warnings.filter((w) => !RECORDS.some((r) => w.startsWith(r)));
  },
};
