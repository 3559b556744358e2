// How a step resuming inside a syscall ends it once the function it stands
// for returns: the rest of mainline's callers up to the syscall's result.
// threads.ts's steps and a variant's own (sched.ts registerLockSteps) call
// one of these with what their code returned.
import { pteR, type Ctx } from './ctx.ts';
import { ISSUED } from './sched.ts';
import { mmap_write_unlock } from './locks.ts';
import type { Vrm } from './mremap.ts';
import type { Id, Thread } from './state.ts';
import { syscallDone } from './syscalls.ts';

/**
 * The syscall returns ret: its last step (user.ts records the result with
 * its meaning to the user). A write fault that returns without a writable
 * PTE (another thread mapped the page first, the zero page say:
 * do_anonymous_page releases its folio and returns 0) is not done: the CPU
 * runs the store again, which faults again. The thread starts over instead.
 */
export function syscall_return(c: Ctx, t: Thread, ret: number): boolean {
  const op = t.op!;
  if (op.kind === 'fault' && op.write && ret === 0 && pteR(c, op.proc, op.page)?.writable !== true) {
    // The retry is a new fault: its allocations count from zero, with no injected failure.
    Object.assign(t, { pc: ISSUED, mms: [], vmas: [], anonVmas: [], folios: [], nums: [], failAt: 0 });
    c.allocs = 0;
    return false;
  }
  syscallDone(c, op, ret);
  return true;
}

/** copy_vma_and_data (mremap.c; §4) returned `moved`: move_vma's end, then do_mremap drops the mmap write lock. */
export function copy_vma_and_data_return(c: Ctx, t: Thread, vrm: Vrm, moved: { err: number; newVma: Id }): boolean {
  const ret = c.k.move_vma_finish(c, vrm, moved);
  mmap_write_unlock(c, t.proc);
  return syscall_return(c, t, ret);
}
