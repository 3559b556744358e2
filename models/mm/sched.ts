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
import type { Ctx } from './ctx.ts';
import type { Id } from './state.ts';

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
 * End the current step here at lock granularity, resuming at `pc` with
 * `locals`. A step that resumes at pc passes it once (c.resumeAt).
 */
export function lock_point(c: Ctx, pc: string, locals: Locals): void {
  const t = c.t;
  if (t === undefined) return;
  if (c.resumeAt === pc) {
    c.resumeAt = undefined;
    return;
  }
  t.pc = pc;
  t.mms = locals.mms ?? [];
  t.vmas = locals.vmas ?? [];
  t.anonVmas = locals.anonVmas ?? [];
  t.folios = locals.folios ?? [];
  t.nums = locals.nums ?? [];
  throw SUSPEND;
}
