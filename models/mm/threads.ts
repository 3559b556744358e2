// Threads at lock granularity (DESIGN.md §2, §3; issue 4): a syscall split
// into steps at its lock points (sched.ts), and the rmap walkers of §2.12
// (walkers.ts); this module runs a thread's next step.
//
// A step runs inside one transition (an immer produce, or a copy-on-write state). It ends at the next lock point (the
// thread stays in flight, resuming there), or when the thread finishes. A
// step that must wait for a lock another thread holds throws WouldBlock
// (locks.ts): it is not enabled in this state.
//
// Each syscall's steps are the kernel path cut at its lock points; the
// continuations below call the function that follows a lock point and then
// what its callers had left to do, so the path is the same code at both
// granularities:
//   mremap (a move):  copy_vma | move_page_tables [take_rmap_locks | PTL] | the rest (unmap of the old range)
//   fork:             per parent VMA, anon_vma_fork | copy_page_range
//   munmap:           split and detach | unmap_vmas (zap) | free_pgtables (unlink_anon_vmas)
//   exit:             zap | free_pgtables and the VMAs (unlink_anon_vmas)
//   fault, mmap, mprotect, pin, and the other mremaps: one step.
import { insert, remove, threadW, warn, type Ctx } from './ctx.ts';
import { lockName } from './locks.ts';
import { release_fault_lock, vmf_anon_prepare_done } from './memory.ts';
import { restoreMove } from './mremap.ts';
import { opThread, threadName, type SyscallOp } from './ops.ts';
import { ISSUED, SUSPEND, emptyThread, lockSteps, type Step } from './sched.ts';
import { kernelEntry } from './syscalls.ts';
import { user_point_of_no_return } from './user.ts';
import { copy_vma_and_data_return, syscall_return } from './resume.ts';
import { ENOMEM } from './rmap.ts';
import { forEachThread, NIL, procThreads, RECORD, threadIndex, threadKey, type Id, type State, type Thread } from './state.ts';
import { WALKER_STEPS } from './walkers.ts';

// ---------------------------------------------------------------------------
// Syscall continuations: resume after a lock point.

/** The syscall's last step (resume.ts: a write fault that lost its race starts over instead). */
const finish = syscall_return;

/** dup_mm's end after dup_mmap's loop. */
function forkTail(c: Ctx, t: Thread, ret: number): boolean {
  const [child, parent] = t.mms as [Id, Id];
  return finish(c, t, c.k.dup_mm_finish(c, child, c.k.dup_mmap_finish(c, child, parent, ret)));
}

const SYSCALL_STEPS: Record<string, Step> = {
  [ISSUED]: (c, t) => finish(c, t, kernelEntry(c, t.op!)),
  move_page_tables: (c, t) => {
    const { vrm, newVma, pmc } = restoreMove(t.proc, t.vmas, t.nums);
    return copy_vma_and_data_return(c, t, vrm, c.k.copy_vma_and_data_move(c, vrm, newVma, pmc));
  },
  move_ptes: (c, t) => {
    const { vrm, newVma, pmc } = restoreMove(t.proc, t.vmas, t.nums);
    c.k.move_ptes_pte_locked(c, pmc);
    return copy_vma_and_data_return(c, t, vrm, c.k.copy_vma_and_data_moved(c, vrm, newVma, pmc, pmc.len));
  },
  copy_vma_and_data_finish: (c, t) => {
    const { vrm, newVma, moved } = restoreMove(t.proc, t.vmas, t.nums);
    return copy_vma_and_data_return(c, t, vrm, c.k.copy_vma_and_data_finish(c, vrm, newVma, moved));
  },
  dup_mmap_vma: (c, t) => {
    const [child, parent] = t.mms as [Id, Id];
    c.resumeAt = 'dup_mmap_vma';
    // The loop resumes at the first VMA left; positions before it are done.
    return forkTail(c, t, c.k.dup_mmap_vmas(c, child, parent, [NIL, ...t.vmas], 1));
  },
  copy_page_range: (c, t) => {
    const [child, parent] = t.mms as [Id, Id];
    const [tmp, mpnt, ...rest] = t.vmas as [Id, Id, ...Id[]];
    let ret = c.k.copy_page_range(c, tmp, mpnt);
    if (ret === 0 && rest.length > 0) ret = c.k.dup_mmap_vmas(c, child, parent, [NIL, ...rest], 1);
    return forkTail(c, t, ret);
  },
  unmap_vmas: (c, t) => {
    c.k.vms_clear_ptes(c, t.proc, [...t.vmas], true, t.nums[0]!, t.nums[1]!);
    return finish(c, t, 0);
  },
  exit_mmap_free: (c, t) => {
    // exit(2), or the teardown of a failed fork's child: nothing follows exit_mmap in either.
    c.k.exit_mmap_free(c, t.mms[0]!, [...t.vmas]);
    return finish(c, t, t.op!.kind === 'fork' ? ENOMEM : 0);
  },
  __anon_vma_prepare_locked: (c, t) => {
    // The rest of __anon_vma_prepare, then of vmf_anon_prepare (the mmap
    // read lock it trylocked, when the fault holds a VMA lock); then the
    // fault goes on from handle_mm_fault with the anon_vma prepared, which
    // is where its code after vmf_anon_prepare leads, or, when another
    // thread changed the PTE meanwhile, where the CPU's retry leads.
    const [vmaId] = t.vmas as [Id];
    const [anon, allocated = NIL] = t.anonVmas as [Id, Id?];
    const prepared = vmf_anon_prepare_done(c, t.proc, c.k.__anon_vma_prepare_locked(c, vmaId, anon, allocated, t.nums[0]!));
    const op = t.op as Extract<SyscallOp, { kind: 'fault' }>;
    const fault = prepared !== 0 ? prepared : c.k.handle_mm_fault(c, vmaId, op.page, op.write, op.large);
    release_fault_lock(c, t.proc, vmaId);
    return finish(c, t, fault);
  },
  do_anonymous_page_map: (c, t) => {
    // The rest of the fault: map under the PTE lock, then drop the VMA or mmap lock it ran under.
    const [vmaId] = t.vmas as [Id];
    const [addr, nr] = t.nums as [number, number];
    const ret = c.k.do_anonymous_page_map(c, vmaId, t.folios[0]!, addr, nr);
    release_fault_lock(c, t.proc, vmaId);
    return finish(c, t, ret);
  },
  free_pgtables: (c, t) => {
    c.k.vms_free_vmas(c, t.proc, [...t.vmas], true);
    return finish(c, t, 0);
  },
};

// ---------------------------------------------------------------------------
// Running threads.

/** A syscall thread, issued and not yet run. */
export function issueSyscall(c: Ctx, op: SyscallOp): void {
  const t = emptyThread(opThread(op), op.proc);
  t.op = op;
  t.failAt = op.enomem;
  insert(c, 'threads', threadKey(t.id), t);
}

/** The step function a thread runs next: a variant's own step for its pc (sched.ts registerLockSteps) before mainline's. */
function stepOf(c: Ctx, t: Thread): Step {
  const step = t.walker !== undefined ? WALKER_STEPS[t.pc] : (lockSteps(c.k)?.[t.pc] ?? SYSCALL_STEPS[t.pc]);
  if (step === undefined) throw new Error(`model bug: ${t.id} has no step ${t.pc}`);
  return step;
}

/**
 * Run thread tid's next step on c's state. WouldBlock propagates (the step
 * is not enabled). The thread is removed when it finishes.
 */
export function runThreadStep(c: Ctx, tid: Id): void {
  const t = threadW(c, tid);
  c.thread = tid;
  c.blocking = true;
  c.held = t.held;
  c.t = t;
  c.allocs = t.allocs;
  c.failAt = t.failAt;
  let finished: boolean;
  const first = t.pc === ISSUED;
  try {
    finished = stepOf(c, t)(c, t);
  } catch (e) {
    if (e !== SUSPEND) throw e;
    finished = false;
    if (first && t.op !== undefined) user_point_of_no_return(c, t.op);
  }
  if (finished) {
    if (t.held.length > 0) warn(c, `${RECORD.lockdep} ${threadName(t.id)} ended holding ${t.held.map((h) => lockName(h.cls, h.id)).join(', ')}`);
    remove(c, 'threads', threadKey(tid));
  } else t.allocs = c.allocs;
}

/** Cannot issue a syscall (issuers): the process is exiting or is a child a fork in flight is still building. */
export const NO_ISSUER = -1;

/**
 * Which thread of each process issues its next syscall, by process id (at
 * most `threads` per process; issue 17): the lowest-numbered idle one.
 * Idle threads of a process are interchangeable (they hold nothing and
 * share the mm), so offering only the lowest loses no behaviour.
 * NO_ISSUER for a process none of whose threads may issue: all busy, an
 * exit in flight, or a child a fork in flight is still building.
 */
export function issuers(s: State, threads: number): number[] {
  const out: number[] = [];
  const busy: boolean[] = [];
  for (let proc = 0; proc < s.nextId.mm; proc++) {
    busy.length = 0;
    let blocked = false;
    procThreads(s, proc, (t) => {
      busy[threadIndex(t.id)] = true;
      if (t.op?.kind === 'exit') blocked = true;
    });
    let idle = 0;
    while (idle < threads && busy[idle] === true) idle++;
    out.push(blocked || idle >= threads ? NO_ISSUER : idle);
  }
  forEachThread(s, (t) => {
    if (t.op?.kind === 'fork' && t.pc !== ISSUED) out[t.mms[0]!] = NO_ISSUER;
  });
  return out;
}

/** Process proc has a syscall in flight on some thread (exit waits for the others: the mm's last user tears it down). */
export function procBusy(s: State, proc: Id): boolean {
  let busy = false;
  procThreads(s, proc, () => (busy = true));
  return busy;
}
