// The syscall layer: one operation of the syntax (ops.ts) runs as the kernel
// entry point it names. In syscall granularity each runs all its steps at once.
import type { Ctx } from './ctx.ts';
import { mmapFlags, type SyscallOp } from './ops.ts';
import { syscallResult, user_syscall_done } from './user.ts';

/**
 * Run one syscall on the draft state; returns the syscall's result (0,
 * -errno, or SIGSEGV for a fault), recorded on the state with its meaning
 * to the user (user.ts). At lock granularity a syscall that stops at a lock
 * point does not return here: its last step records it (resume.ts).
 */
export function runSyscall(c: Ctx, op: SyscallOp): number {
  return syscallDone(c, op, kernelEntry(c, op));
}

/** The syscall returned raw from the kernel: its result as the user sees it, recorded on the state (user.ts). */
export function syscallDone(c: Ctx, op: SyscallOp, raw: number): number {
  const ret = syscallResult(op, raw);
  user_syscall_done(c, op, ret);
  return ret;
}

/** The kernel entry point an operation names. */
export function kernelEntry(c: Ctx, op: SyscallOp): number {
  switch (op.kind) {
    case 'mmap':
      return c.k.do_mmap(c, op.proc, op.addr, op.len, mmapFlags(op), op.close);
    case 'fault':
      return c.k.do_user_fault(c, op.proc, op.page, op.write, op.large);
    case 'fork':
      return c.k.dup_mm(c, op.proc);
    case 'munmap':
      return c.k.vm_munmap(c, op.proc, op.addr, op.len);
    case 'mprotect':
      return c.k.do_mprotect(c, op.proc, op.addr, op.len, op.prot);
    case 'mremap':
      return c.k.do_mremap(c, op.proc, op.addr, op.oldLen, op.newAddr, op.newLen, op.flags);
    case 'pin':
      return c.k.pin_user_page(c, op.proc, op.page);
    case 'exit':
      c.k.exit_mmap(c, op.proc);
      return 0;
  }
}
