// Lock points: where a kernel path is split into steps at lock granularity
// (DESIGN.md §3, issue 4). A lock point sits just before a lock acquisition
// that another thread may contend (the anon_vma root rwsem, a PTL another
// thread can be waiting for between its own steps, the folio lock). At
// syscall granularity it does nothing. At lock granularity it saves the
// locals the rest of the path needs into the thread and ends the step; the
// step that resumes there (threads.ts) calls the function that follows the
// lock point, then whatever the callers had left to do.
//
// The effects made before the lock point stay (the step's immer draft is
// kept); a lock the step could not take aborts the whole step instead
// (locks.ts WouldBlock), so a step is all-or-nothing up to its lock point.
//
// A variant cuts its own code the same way: it calls lock_point with a pc of
// its own and registers, by pc, the step that resumes there (registry.ts
// Variant.steps, registerLockSteps below; threads.ts looks a syscall's step
// up in the variant's steps first). Its steps end the syscall through
// resume.ts. A variant step may also carry a mainline pc, taking over that
// lock point on a path the variant replaced.
import type { Ctx } from './ctx.ts';
import { emptyRecords, type Id, type Thread } from './state.ts';

/** The pc of a thread that has been issued and has not run yet. */
export const ISSUED = 'issued';

/** A step of a thread: true when the thread has finished. */
export type Step = (c: Ctx, t: Thread) => boolean;

/** A thread with no locals, about to run its first step. */
export function emptyThread(id: Id, proc: Id): Thread {
  return { id, proc, op: undefined, walker: undefined, pc: ISSUED, held: emptyRecords(), queued: undefined, allocs: 0, failAt: 0, mms: [], vmas: [], anonVmas: [], folios: [], nums: [], seen: emptyRecords() };
}


/**
 * Another thread of the caller's mm can exist (--threads above 1, lock
 * granularity): then a fault's path is cut where only such a thread can
 * contend (the PTE lock, __anon_vma_prepare's anon_vma lock). Constant
 * along a search.
 */
export const mmMayHaveOtherThreads = (c: Ctx): boolean => (c.s.budgets.threads ?? 1) > 1;

/** Thrown by lock_point to end a step; caught by the step runner. */
export const SUSPEND: unique symbol = Symbol('suspend');

export interface Locals {
  mms?: Id[];
  vmas?: Id[];
  anonVmas?: Id[];
  folios?: Id[];
  nums?: number[];
}

/**
 * The kernel functions on the stack at each lock point whose mainline code
 * the step resuming there stands for (threads.ts). When a variant replaces
 * one of them, the lock point does not end the step (the variant's path runs
 * on within it, as at syscall granularity), unless the variant resumes that
 * lock point with a step of its own (registerLockSteps).
 */
const CALLERS: Record<string, readonly string[]> = {
  move_page_tables: ['do_mremap', 'mremap_to', 'mremap_at', 'move_vma', 'copy_vma_and_data'],
  move_ptes: ['do_mremap', 'mremap_to', 'mremap_at', 'move_vma', 'copy_vma_and_data', 'copy_vma_and_data_move', 'move_page_tables', 'move_ptes'],
  copy_vma_and_data_finish: ['do_mremap', 'mremap_to', 'mremap_at', 'move_vma', 'copy_vma_and_data', 'copy_vma_and_data_move', 'copy_vma_and_data_moved'],
  dup_mmap_vma: ['dup_mm', 'dup_mmap', 'dup_mmap_vmas'],
  copy_page_range: ['dup_mm', 'dup_mmap', 'dup_mmap_vmas'],
  unmap_vmas: ['vm_munmap', 'do_vmi_munmap'],
  exit_mmap_free: ['exit_mmap', 'dup_mm_finish'],
  free_pgtables: ['vm_munmap', 'do_vmi_munmap', 'vms_clear_ptes'],
  do_anonymous_page_map: ['do_user_fault', 'handle_mm_fault', 'do_anonymous_page'],
  __anon_vma_prepare_locked: ['do_user_fault', 'handle_mm_fault', 'do_anonymous_page', 'do_wp_page', 'wp_page_copy', '__anon_vma_prepare'],
};

let mainline: Readonly<Record<string, unknown>> | undefined;
/** kernel.ts registers the mainline table (a direct import would be a cycle). */
export function registerMainline(k: Readonly<Record<string, unknown>>): void {
  mainline = k;
}

/** Per kernel table: the steps of its variant's own lock points (none for mainline). */
const ownSteps = new WeakMap<object, Readonly<Record<string, Step>>>();

/**
 * A variant's lock points (registry.ts, from its `steps`): pc -> the step
 * that resumes there. A pc of its own names a lock_point in its code; a pc
 * of mainline's (a CALLERS key) takes over that lock point, on the paths the
 * variant replaced, from mainline's step. Registered once, when the table is
 * built; threads.ts looks a syscall's step up here first.
 */
export function registerLockSteps(kernel: object, steps: Readonly<Record<string, Step>>): void {
  ownSteps.set(kernel, Object.freeze({ ...steps }));
}

/** The steps a kernel table's variant registered, if any. */
export function lockSteps(kernel: object): Readonly<Record<string, Step>> | undefined {
  return ownSteps.get(kernel);
}

/** Per kernel table (fixed for a model), the lock points that do not end a step: computed once. */
const uncut = new WeakMap<object, ReadonlySet<string>>();
function uncutLockPoints(kernel: object): ReadonlySet<string> {
  let out = uncut.get(kernel);
  if (out === undefined) {
    const k = kernel as Record<string, unknown>;
    const own = ownSteps.get(kernel) ?? {};
    out = new Set(Object.keys(CALLERS).filter((pc) => !(pc in own) && mainline !== undefined && CALLERS[pc]!.some((name) => k[name] !== mainline![name])));
    uncut.set(kernel, out);
  }
  return out;
}

/**
 * What a variant's replacements turn off at lock granularity: the functions
 * it replaces that sit above a lock point it does not resume itself, and
 * those lock points (empty for mainline, and for a variant whose steps
 * resume them). Its own path then runs whole where mainline's is cut.
 */
export function disabledLockPoints(kernel: object): { functions: string[]; lockPoints: string[] } {
  const k = kernel as Record<string, unknown>;
  const lockPoints = [...uncutLockPoints(kernel)];
  const functions = [...new Set(lockPoints.flatMap((pc) => CALLERS[pc]!.filter((name) => mainline !== undefined && k[name] !== mainline[name])))];
  return { functions, lockPoints };
}

/**
 * End the current step here at lock granularity, resuming at `pc` with
 * `locals` (without locals, the thread keeps those of its last lock point).
 * A step that resumes at pc passes it once (c.resumeAt).
 */
export function lock_point(c: Ctx, pc: string, locals?: Locals): void {
  const t = c.t;
  if (t === undefined) return;
  if (c.resumeAt === pc) {
    c.resumeAt = undefined;
    return;
  }
  if (uncutLockPoints(c.k).has(pc)) return;
  t.pc = pc;
  if (locals === undefined) throw SUSPEND;
  t.mms = locals.mms ?? [];
  t.vmas = locals.vmas ?? [];
  t.anonVmas = locals.anonVmas ?? [];
  t.folios = locals.folios ?? [];
  t.nums = locals.nums ?? [];
  throw SUSPEND;
}
