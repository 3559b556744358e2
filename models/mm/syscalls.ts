// The syscall layer: one operation of the syntax (ops.ts) runs as the kernel
// entry point it names. In syscall granularity each runs all its steps at once.
import type { Ctx } from './ctx.ts';
import { mm_alloc } from './mmap.ts';
import { mmapFlags, type Op } from './ops.ts';
import type { Id, State } from './state.ts';

/**
 * The id a fork gives its child: the next process id never used, so that a
 * trace never reuses a name (the canonical form renames processes anyway).
 */
export function nextFreeProc(s: State): Id {
  return s.nextId.mm;
}

/** Run one syscall on the draft state; returns the syscall's result (0 or -errno). */
export function runSyscall(c: Ctx, op: Op): number {
  switch (op.kind) {
    case 'mmap':
      return c.k.do_mmap(c, op.proc, op.addr, op.len, mmapFlags(op), op.close);
    case 'fault':
      return c.k.do_user_fault(c, op.proc, op.page, op.write, op.large);
    case 'fork': {
      // kernel/fork.c dup_mm: a new mm, dup_mmap, and on failure mmput -> exit_mmap.
      const child = mm_alloc(c, nextFreeProc(c.s), op.proc);
      const ret = c.k.dup_mmap(c, child, op.proc);
      if (ret !== 0) c.k.exit_mmap(c, child);
      return ret;
    }
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
