// Records the model makes at lock points and walker ends: lockdep's errors
// and the kernel's lock asserts (lock-discipline), and try_to_unmap or
// remove_migration_ptes walks that missed a mapping
// (walker-sees-every-mapping). Kernel-semantics §2.12, §6, §7.1.
import type { Property } from '../src/engine/model.ts';
import { RECORD, type State } from '../models/mm/state.ts';

/** A kernel assert that a lock is held (mmap_assert_locked, the folio lock of folio_move_anon_rmap, ...). */
const LOCK_ASSERT = /mmap_assert_(write_)?locked$|not locked$/;

export const lockDiscipline: Property<State> = {
  id: 'lock-discipline',
  description: 'no lock is taken twice, released unheld, taken against the §6.1 order, or missing where the kernel asserts it',
  rule: 'kernel-semantics §6.1 (hierarchy, comment at the top of mm/rmap.c), §7.1 (mmap_assert_write_locked in anon_vma_clone, folio lock in folio_move_anon_rmap)',
  when: 'always',
  check(s) {
    const out: string[] = [];
    for (const w of s.warnings) {
      if (w.startsWith(RECORD.lockdep)) out.push(w.slice(RECORD.lockdep.length).trim());
      else if (LOCK_ASSERT.test(w)) out.push(w);
    }
    return out;
  },
};

export const walkerSeesEveryMapping: Property<State> = {
  id: 'walker-sees-every-mapping',
  description: 'an uncontended try_to_unmap walk leaves no mapping of its folio that existed when it began; a remove_migration_ptes walk finds every mapping there when it began and still there at its end',
  rule: 'kernel-semantics §2.12 (rmap_walk_anon walks one tree in order; what it relies on: (a), (b)), §4 (need_rmap_locks); mm/migrate.c remove_migration_ptes; bug-corpus B5a',
  when: 'always',
  check(s) {
    return s.warnings.filter((w) => w.startsWith(RECORD.walkerMissed)).map((w) => w.slice(RECORD.walkerMissed.length).trim());
  },
};
