// The execution context of one kernel path: the immer draft it mutates, the
// overridable table of kernel functions every call goes through (so a variant
// that replaces one function changes it for every caller, DESIGN.md §6), the
// calling thread, and the allocation counter used to inject ENOMEM.
import type { AllocKind, AnonVma, Avc, Folio, Id, Mm, State, Vma } from './state.ts';
import type { Kernel } from './kernel.ts';

export interface Ctx {
  /** The draft state being mutated (inside an immer produce). */
  s: State;
  /** Kernel functions; call them as c.k.fn(c, ...). */
  k: Kernel;
  /** The calling thread (a process id for syscalls). */
  thread: Id;
  /** Allocations made so far by this syscall. */
  allocs: number;
  /** The allocation (1-based) that fails with ENOMEM, or 0 for none. */
  failAt: number;
  /** Allocation kinds made, in order (tells the explorer where ENOMEM can be injected). */
  allocLog: AllocKind[];
}

export function makeCtx(s: State, k: Kernel, thread: Id, failAt = 0): Ctx {
  return { s, k, thread, allocs: 0, failAt, allocLog: [] };
}

/** Record a kernel assert (WARN/BUG) by name; the state keeps each name once. */
export function warn(c: Ctx, name: string): void {
  if (!c.s.warnings.includes(name)) c.s.warnings.push(name);
}

/** An allocation point: returns false when this allocation is the injected ENOMEM. */
export function allocOk(c: Ctx, kind: AllocKind): boolean {
  c.allocs++;
  c.allocLog.push(kind);
  return c.allocs !== c.failAt;
}

/**
 * Dereference an anon_vma. Touching a freed one is recorded as a
 * use-after-free (the no-use-after-free property reports it), and the
 * tombstone is returned so that the path goes on as the kernel would.
 */
export function av(c: Ctx, id: Id, where: string): AnonVma {
  const a = c.s.anonVmas[id];
  if (a === undefined) throw new Error(`model bug: no anon_vma ${id} (${where})`);
  if (a.freed) {
    const name = `use-after-free: A${id} in ${where}`;
    if (!c.s.uaf.includes(name)) c.s.uaf.push(name);
  }
  return a;
}

export function vma(c: Ctx, id: Id): Vma {
  const v = c.s.vmas[id];
  if (v === undefined) throw new Error(`model bug: no vma ${id}`);
  return v;
}

export function avc(c: Ctx, id: Id): Avc {
  const a = c.s.avcs[id];
  if (a === undefined) throw new Error(`model bug: no avc ${id}`);
  return a;
}

export function mm(c: Ctx, id: Id): Mm {
  const m = c.s.mms[id];
  if (m === undefined) throw new Error(`model bug: no mm ${id}`);
  return m;
}

export function folio(c: Ctx, id: Id): Folio {
  const f = c.s.folios[id];
  if (f === undefined) throw new Error(`model bug: no folio ${id}`);
  return f;
}
