// The mm model as the explorer sees it (src/engine/model.ts): initial state,
// the operation alphabet over the bounds, transitions (through immer, the
// reference semantics, or copy-on-write for the search: forSearch), the
// canonical encoding, the compact pack and the properties. At syscall granularity each syscall
// runs all its steps at once, so every state is quiescent; at lock
// granularity syscalls run as steps of threads, with rmap walkers
// (threads.ts).
import { produce } from 'immer';
import { ParseError, type Model, type Property } from '../../src/engine/model.ts';
import { ALL_PROPERTIES } from '../../properties/index.ts';
import { withStateView } from '../../properties/view.ts';
import { encodeState, encodeStateScratch } from './canon.ts';
import { makeCtx, threadW, type Ctx } from './ctx.ts';
import { cowState, deepFreeze } from './cow.ts';
import { inDrafts } from './draft.ts';
import { packMmState, packMmStateScratch, unpackMmState } from './pack.ts';
import { ampleSet } from './por.ts';
import { mainlineKernel, type Kernel } from './kernel.ts';
import { mm_alloc } from './mmap.ts';
import { formatOp, OP_KINDS, parseOp, opThread, threadName, type Op, type OpKind, type SyscallOp } from './ops.ts';
import { WouldBlock } from './locks.ts';
import { issuers, issueSyscall, NO_ISSUER, procBusy, runThreadStep } from './threads.ts';
import { issueWalker } from './walkers.ts';
import { noDeadlock, noDeadlockWith } from '../../properties/deadlock.ts';
import { anyThread, emptyState, forEachThread, liveProcs, MAX_THREADS, NIL, threadIndex, threadOf, VM_EXEC, VM_READ, VM_WRITE, WALKER_CODE, ZERO_PAGE, type State, type WalkerKind } from './state.ts';
import { runSyscall } from './syscalls.ts';
import type { MremapFlags } from './mremap.ts';
import { resolveKernel } from '../variants/registry.ts';
import '../variants/builtin.ts';

export interface Bounds {
  /** Most processes alive at once. */
  procs: number;
  /** Pages in each address space. */
  pages: number;
  /** Longest mmap/munmap/mprotect/mremap length. */
  maxLen: number;
  /** Syscall kinds the explorer offers. */
  ops: OpKind[];
  /** ENOMEM injections allowed along one trace. */
  enomem: number;
  /** Write faults may also allocate a 2-page folio (an order-1 mTHP). */
  largeFolios: boolean;
  /** Offer MREMAP_RELOCATE_ANON moves (only models with the RFC accept the flag). */
  relocate: boolean;
  /** syscall: each syscall is one atomic step. lock: syscalls are split at their lock points, and rmap walkers run (threads.ts). */
  granularity: Granularity;
  /** rmap walkers the explorer may start along one trace (lock granularity). */
  walkers: number;
  /** Threads per process that may issue syscalls (lock granularity; issue 17). */
  threads: number;
  /** Merge a step that touches only its thread's own data (issuing a syscall or starting a walker) into the next step. */
  reduce: boolean;
  /** Partial-order reduction (lock granularity, --por): expand one component's steps alone where they commute with the rest (por.ts). */
  por: boolean;
}

export type Granularity = 'syscall' | 'lock';
/** The rmap walkers (walkers.ts): reclaim's try_to_unmap, folio_referenced, and migration's anon_vma pin and remove_migration_ptes walk. */
export const WALKER_KINDS: readonly WalkerKind[] = Object.keys(WALKER_CODE) as WalkerKind[];

export const DEFAULT_OPS: OpKind[] = ['mmap', 'fault', 'fork', 'munmap', 'mprotect', 'mremap', 'exit'];
export const DEFAULT_BOUNDS: Bounds = {
  procs: 2,
  pages: 6,
  maxLen: 2,
  ops: DEFAULT_OPS,
  enomem: 0,
  largeFolios: false,
  relocate: false,
  granularity: 'syscall',
  walkers: 1,
  threads: 1,
  reduce: true,
  por: false,
};

export type MmModel = Model<State, Op> & { readonly bounds: Bounds; readonly kernel: Kernel; readonly transitions: Transitions };

/**
 * How a transition runs the kernel functions (DESIGN.md §2): 'immer', the
 * reference semantics (a produce: run, replay, tests), or 'cow', the
 * explorer's copy-on-write path (cow.ts). The same code either way; a
 * differential test keeps them identical.
 */
export type Transitions = 'immer' | 'cow';

/**
 * Run body on a new state derived from s, and return it; s is never written.
 * The context's allocation log is kept for the caller (ENOMEM points).
 */
function transition(mode: Transitions, s: State, kernel: Kernel, thread: number, failAt: number, body: (c: Ctx) => void): { next: State; c: Ctx } {
  if (mode === 'cow') {
    const c = makeCtx(cowState(s), kernel, thread, failAt, []);
    body(c);
    return { next: c.s, c };
  }
  let c!: Ctx;
  const next = inDrafts(() =>
    produce(s, (draft) => {
      c = makeCtx(draft, kernel, thread, failAt);
      // A transition starts with no syscall completed in it (as cowState).
      if (draft.result !== undefined) draft.result = undefined;
      body(c);
    }),
  );
  return { next, c };
}

/** Run one syscall at syscall granularity; also returns how many allocations it made. */
function runOp(mode: Transitions, kernel: Kernel, s: State, op: SyscallOp): { next: State; allocs: number } {
  const { next, c } = transition(mode, s, kernel, opThread(op), op.enomem, (c) => {
    runSyscall(c, op);
    if (op.enomem > 0 && c.allocs >= op.enomem) c.s.budgets.enomem = Math.max(0, c.s.budgets.enomem - 1);
  });
  return { next, allocs: c.allocs };
}

/** Apply one syscall to a state at syscall granularity (immer by default: the reference semantics). */
export function applyOp(kernel: Kernel, s: State, op: SyscallOp, mode: Transitions = 'immer'): State {
  return runOp(mode, kernel, s, op).next;
}

/**
 * Apply one action at lock granularity: issue a syscall or start a walker
 * (and, with reduce, run its first step), or run a thread's next step.
 * Throws WouldBlock when the step must wait for a lock.
 */
export function applyLockOp(kernel: Kernel, s: State, op: Op, reduce: boolean, mode: Transitions = 'immer'): State {
  if (op.kind === 'step' && threadOf(s, op.proc) === undefined) throw new ParseError(`"${formatOp(op)}": ${threadName(op.proc)} has nothing in flight`);
  const tid = op.kind === 'step' ? op.proc : op.kind === 'walk' ? NIL : opThread(op);
  const start = (c: Ctx): number => {
    if (op.kind === 'step') return tid;
    if (op.kind === 'walk') return issueWalker(c, op.walker, op.proc, op.page);
    issueSyscall(c, op);
    if (op.enomem > 0) c.s.budgets.enomem = Math.max(0, c.s.budgets.enomem - 1);
    return tid;
  };
  const thread = op.proc;
  try {
    return transition(mode, s, kernel, thread, 0, (c) => {
      const t = start(c);
      if (op.kind !== 'step' && !reduce) return;
      runThreadStep(c, t);
    }).next;
  } catch (e) {
    if (!(e instanceof WouldBlock) || !e.queueable) throw e;
    // The step's first lock operation found the rwsem held: the thread joins
    // its wait list instead (the step's other effects, none of them a lock
    // operation, wait with it and run when it gets the lock).
    return transition(mode, s, kernel, thread, 0, (c) => {
      threadW(c, start(c)).queued = { cls: e.cls, id: e.id };
    }).next;
  }
}

/** The lock thread tid's next step waits for in s, or null when the step can run. */
export function blockedOn(kernel: Kernel, s: State, tid: number, mode: Transitions = 'immer'): WouldBlock | null {
  try {
    applyLockOp(kernel, s, { kind: 'step', proc: tid, pc: '', enomem: 0 }, true, mode);
    return null;
  } catch (e) {
    if (e instanceof WouldBlock) return e;
    throw e;
  }
}

/**
 * Thread tid's next step run until it must wait inside itself, after
 * taking some locks and releasing none: the state at that point (the thread
 * holding what it took) and the lock it waits for; null otherwise. Only the
 * deadlock property looks at this state; the search never enters it.
 */
export function stuckInStep(kernel: Kernel, s: State, tid: number, mode: Transitions = 'immer'): { state: State; wait: WouldBlock } | null {
  let wait: WouldBlock | null = null;
  const { next } = transition(mode, s, kernel, tid, 0, (c) => {
    try {
      runThreadStep(c, tid);
    } catch (e) {
      if (!(e instanceof WouldBlock)) throw e;
      wait = e;
    }
  });
  const w = wait as WouldBlock | null;
  return w !== null && w.acquired > 0 && w.firm ? { state: next, wait: w } : null;
}

/** How many allocations op makes in s (where an ENOMEM can be injected). */
export function countAllocations(kernel: Kernel, s: State, op: SyscallOp, mode: Transitions = 'immer'): number {
  return runOp(mode, kernel, s, op).allocs;
}

const FLAG_SETS: MremapFlags[] = [
  { maymove: true, fixed: true, dontunmap: false, relocate: false },
  { maymove: true, fixed: true, dontunmap: true, relocate: false },
];
const RELOCATE_FLAG_SETS: MremapFlags[] = [...FLAG_SETS, { maymove: true, fixed: true, dontunmap: false, relocate: true }];

/** Pages [a, a + len) hold no VMA of the process. */
function rangeFree(s: State, proc: number, a: number, len: number): boolean {
  for (const id of s.mms[proc]!.vmas) {
    const v = s.vmas[id]!;
    if (v.start < a + len && a < v.end) return false;
  }
  return true;
}

/** The VMA of proc containing page, if any. */
function vmaAt(s: State, proc: number, page: number) {
  for (const id of s.mms[proc]!.vmas) {
    const v = s.vmas[id]!;
    if (v.start <= page && page < v.end) return v;
  }
  return undefined;
}

/** Every page of [a, a + len) lies in a VMA that already has prot: mprotect would change nothing. */
function alreadyProt(s: State, proc: number, a: number, len: number, prot: number): boolean {
  for (let page = a; page < a + len; page++) {
    const v = vmaAt(s, proc, page);
    if (v === undefined || (v.flags & (VM_READ | VM_WRITE | VM_EXEC)) !== prot) return false;
  }
  return true;
}

/** The syscalls of b.ops as a set, made once per bounds. */
const alphabets = new WeakMap<Bounds, ReadonlySet<OpKind>>();
function allowed(b: Bounds): ReadonlySet<OpKind> {
  let set = alphabets.get(b);
  if (set === undefined) alphabets.set(b, (set = new Set(b.ops)));
  return set;
}

/** The syscalls of b.ops of one kind (a random walk's draw), made once per bounds and kind. */
const kindAlphabets = new WeakMap<Bounds, Map<string, ReadonlySet<OpKind>>>();
function allowedOfKind(b: Bounds, kind: string): ReadonlySet<OpKind> {
  let byKind = kindAlphabets.get(b);
  if (byKind === undefined) kindAlphabets.set(b, (byKind = new Map()));
  let set = byKind.get(kind);
  if (set === undefined) byKind.set(kind, (set = new Set(b.ops.filter((k) => k === kind))));
  return set;
}

/**
 * The operation alphabet (DESIGN.md §3) over the bounds, pruned of
 * operations that cannot change the state (faults on present pages with the
 * access already allowed, munmap of empty ranges, ...). With a kind, only
 * the operations of that kind (a random walk draws the kind first).
 */
export function enumerateOps(s: State, b: Bounds, issuer?: readonly number[], kind?: string): SyscallOp[] {
  const out: SyscallOp[] = [];
  const allow = kind === undefined ? allowed(b) : allowedOfKind(b, kind);
  if (allow.size === 0) return out;
  const nProcs = liveProcs(s);
  for (let proc = 0; proc < s.nextId.mm; proc++) {
    const m = s.mms[proc];
    const thread = issuer === undefined ? 0 : issuer[proc]!;
    if (m === undefined || thread === NO_ISSUER) continue;
    const first = out.length;
    if (allow.has('mmap')) {
      for (let a = 0; a < b.pages; a++)
        for (let len = 1; len <= b.maxLen && a + len <= b.pages; len++)
          if (rangeFree(s, proc, a, len))
            out.push({ kind: 'mmap', proc, addr: a, len, prot: VM_READ | VM_WRITE, close: false, special: false, nomerge: false, enomem: 0 });
    }
    if (allow.has('fault')) {
      for (let page = 0; page < b.pages; page++) {
        const v = vmaAt(s, proc, page);
        if (v === undefined) continue;
        const pte = m.ptes[page];
        if ((v.flags & VM_WRITE) !== 0 && (pte === undefined || !pte.writable)) out.push({ kind: 'fault', proc, page, write: true, large: false, enomem: 0 });
        if (b.largeFolios && (v.flags & VM_WRITE) !== 0 && pte === undefined) out.push({ kind: 'fault', proc, page, write: true, large: true, enomem: 0 });
        if ((v.flags & VM_READ) !== 0 && pte === undefined) out.push({ kind: 'fault', proc, page, write: false, large: false, enomem: 0 });
      }
    }
    if (allow.has('pin')) {
      for (let page = 0; page < m.ptes.length; page++) {
        const pte = m.ptes[page];
        if (pte !== undefined && pte.folio !== ZERO_PAGE && !s.folios[pte.folio]!.pinned) out.push({ kind: 'pin', proc, page, enomem: 0 });
      }
    }
    if (allow.has('fork') && nProcs < b.procs) out.push({ kind: 'fork', proc, enomem: 0 });
    if (allow.has('munmap')) {
      for (let a = 0; a < b.pages; a++)
        for (let len = 1; len <= b.maxLen && a + len <= b.pages; len++)
          if (!rangeFree(s, proc, a, len)) out.push({ kind: 'munmap', proc, addr: a, len, enomem: 0 });
    }
    if (allow.has('mprotect')) {
      for (let a = 0; a < b.pages; a++) {
        if (vmaAt(s, proc, a) === undefined) continue;
        for (let len = 1; len <= b.maxLen && a + len <= b.pages; len++)
          for (const prot of [VM_READ, VM_READ | VM_WRITE])
            if (!alreadyProt(s, proc, a, len, prot)) out.push({ kind: 'mprotect', proc, addr: a, len, prot, enomem: 0 });
      }
    }
    if (allow.has('mremap')) {
      for (const id of m.vmas) {
        const v = s.vmas[id]!;
        for (let a = v.start; a < v.end; a++)
          for (let len = 1; len <= b.maxLen && a + len <= v.end; len++) {
            // In place: shrink, or expand into free space.
            for (let nl = 1; nl <= b.maxLen && a + nl <= b.pages; nl++)
              if (nl !== len) out.push({ kind: 'mremap', proc, addr: a, oldLen: len, newAddr: a, newLen: nl, flags: { maymove: false, fixed: false, dontunmap: false, relocate: false }, enomem: 0 });
            // Moves of the same length to any non-overlapping destination.
            for (let n = 0; n + len <= b.pages; n++) {
              if (n < a + len && a < n + len) continue;
              for (const flags of b.relocate ? RELOCATE_FLAG_SETS : FLAG_SETS) {
                if (flags.dontunmap && !rangeFree(s, proc, n, len)) continue;
                out.push({ kind: 'mremap', proc, addr: a, oldLen: len, newAddr: n, newLen: len, flags, enomem: 0 });
              }
            }
          }
      }
    }
    // exit_group: the mm is torn down by its last user, once the other threads have left the kernel.
    if (allow.has('exit') && (issuer === undefined || !procBusy(s, proc))) out.push({ kind: 'exit', proc, enomem: 0 });
    if (thread > 0) for (let i = first; i < out.length; i++) out[i]!.thread = thread;
  }
  return out;
}

/** Check that op can be issued in s (for `mmcheck run` and --from); throws ParseError. */
export function validateOp(s: State, b: Bounds, op: Op, text: string): void {
  if (op.kind === 'step') {
    if (b.granularity !== 'lock') throw new ParseError(`"${text}": steps exist at lock granularity only (--granularity lock)`);
    if (threadOf(s, op.proc) === undefined) throw new ParseError(`"${text}": ${threadName(op.proc)} has nothing in flight`);
    return;
  }
  if (s.mms[op.proc] === undefined) throw new ParseError(`"${text}": process P${op.proc} does not exist`);
  if (op.kind === 'walk') {
    if (b.granularity !== 'lock') throw new ParseError(`"${text}": rmap walkers run at lock granularity only (--granularity lock)`);
    const pte = s.mms[op.proc]!.ptes[op.page];
    if (pte === undefined || pte.folio === ZERO_PAGE) throw new ParseError(`"${text}": P${op.proc} maps no anonymous folio at page ${op.page}`);
    if ((s.budgets.walkers ?? 0) <= 0) throw new ParseError(`"${text}": no walker left to start (--walkers)`);
    return;
  }
  if (b.granularity === 'lock') {
    const tid = opThread(op);
    if (threadIndex(tid) >= b.threads) throw new ParseError(`"${text}": ${threadName(tid)} is beyond --threads ${b.threads}`);
    if (threadOf(s, tid) !== undefined || issuers(s, MAX_THREADS)[op.proc] === NO_ISSUER)
      throw new ParseError(`"${text}": ${threadName(tid)} has a syscall in flight (or its process is exiting or a child being forked); step it first`);
    if (op.kind === 'exit' && procBusy(s, op.proc)) throw new ParseError(`"${text}": P${op.proc} has a syscall in flight on another thread; step it first`);
  }
  const range = (addr: number, len: number): void => {
    if (addr + len > b.pages) throw new ParseError(`"${text}": [${addr},${addr + len}) lies outside the ${b.pages}-page address space (--pages)`);
  };
  switch (op.kind) {
    case 'mmap':
      range(op.addr, op.len);
      if (!rangeFree(s, op.proc, op.addr, op.len)) throw new ParseError(`"${text}": [${op.addr},${op.addr + op.len}) is not free (MAP_FIXED over a mapping is not modelled)`);
      break;
    case 'fault':
    case 'pin':
      range(op.page, 1);
      break;
    case 'munmap':
    case 'mprotect':
      range(op.addr, op.len);
      break;
    case 'mremap':
      range(op.addr, op.oldLen);
      range(op.newAddr, op.newLen);
      break;
    case 'fork':
      if (liveProcs(s) >= b.procs) throw new ParseError(`"${text}": ${b.procs} processes are alive already (--procs ${b.procs})`);
      break;
    case 'exit':
      break;
  }
  if (op.enomem > 0 && s.budgets.enomem <= 0) throw new ParseError(`"${text}": no ENOMEM injection left (--enomem)`);
}

export function initialState(b: Bounds): State {
  const budgets = b.granularity === 'lock' ? { enomem: b.enomem, walkers: b.walkers, ...(b.threads > 1 ? { threads: b.threads } : {}) } : { enomem: b.enomem };
  return produce(emptyState(budgets), (draft) => {
    mm_alloc(makeCtx(draft, mainlineKernel, 0), 0, NIL);
  });
}

export interface MmModelOptions {
  /** A built-in variant name (models/variants); default mainline. */
  variant?: string;
  name?: string;
  kernel?: Kernel;
  bounds?: Partial<Bounds>;
  properties?: readonly Property<State>[];
  /** How transitions run (default immer, the reference semantics). */
  transitions?: Transitions;
  /** How the explorer's search runs them (Model.forSearch; default cow). immer: the reference path (the bench's baseline). */
  search?: Transitions;
  /**
   * Debug (--check-immutability): deep-freeze every state before computing
   * its actions or successors, so that kernel code (a variant's above all)
   * writing to its input state fails at the write, naming the function.
   */
  checkImmutability?: boolean;
}

/** A write to a frozen input state, as --check-immutability reports it: one line naming the function. */
export class MutatedInputError extends Error {
  override name = 'MutatedInputError';
}

/** Its message (an error from a worker thread arrives as a plain Error with the message). */
export const MUTATED_INPUT = /^model ".*" writes to its input state in /;

function mutationReport(model: string, e: TypeError): MutatedInputError {
  // The first stack frame is the function that wrote (V8: "    at name (url:line:col)").
  const frame = e.stack?.split('\n').find((l) => l.trimStart().startsWith('at '));
  const m = frame?.match(/at (?:(\S+) \()?(?:file:\/\/)?([^)]*?):(\d+):\d+\)?$/);
  // A method of a variant's overrides object shows as Object.name.
  const where = m ? `${(m[1] ?? '<anonymous>').replace(/^Object\./, '')} (${m[2]}:${m[3]})` : 'an unknown function';
  return new MutatedInputError(`model "${model}" writes to its input state in ${where}: ${e.message}`);
}

/**
 * The walkers the explorer may start in s: one per folio mapped (at its
 * first mapping), of each kind. One start per folio is enough: a walker
 * starts from the folio, as the kernel's do (shrink_folio_list,
 * folio_referenced and migrate_pages take a folio off a list, not a
 * mapping), so the mapping that names it changes nothing it does, and the
 * canonical encoding leaves it out (test/walkers.test.ts checks that every
 * start gives the same successor).
 */
function walkerStarts(s: State): Op[] {
  const out: Op[] = [];
  if ((s.budgets.walkers ?? 0) <= 0) return out;
  const seen = new Set<number>();
  for (let proc = 0; proc < s.nextId.mm; proc++) {
    const ptes = s.mms[proc]?.ptes;
    if (ptes === undefined) continue;
    for (let page = 0; page < ptes.length; page++) {
      const f = ptes[page]?.folio;
      if (f === undefined || f === ZERO_PAGE || seen.has(f)) continue;
      seen.add(f);
      for (const walker of WALKER_KINDS) out.push({ kind: 'walk', walker, proc, page, enomem: 0 });
    }
  }
  return out;
}

/**
 * The successors the last actions() call computed, for next() to return
 * (the explorer asks for them in order, right after). One memo per model;
 * a WeakMap from action to successor cost about a quarter of the search's
 * time in garbage collection (its entries outlive a scavenge).
 */
class SuccessorMemo {
  private state: State | undefined;
  private readonly ops: Op[] = [];
  private readonly next: State[] = [];
  private hint = 0;

  begin(s: State): void {
    this.state = s;
    this.ops.length = 0;
    this.next.length = 0;
    this.hint = 0;
  }

  set(op: Op, t: State): void {
    this.ops.push(op);
    this.next.push(t);
  }

  /** The successor of s under op, if the last actions(s) computed it. */
  get(s: State, op: Op): State | undefined {
    if (s !== this.state) return undefined;
    let i = this.hint;
    if (this.ops[i] !== op) i = this.ops.indexOf(op);
    if (i < 0) return undefined;
    this.hint = i + 1;
    return this.next[i];
  }
}

export function createMmModel(opts: MmModelOptions = {}): MmModel {
  const bounds: Bounds = { ...DEFAULT_BOUNDS, ...opts.bounds };
  const kernel = opts.kernel ?? (opts.variant !== undefined ? resolveKernel(opts.variant) : mainlineKernel);
  const lock = bounds.granularity === 'lock';
  const mode = opts.transitions ?? 'immer';
  const name = opts.name ?? opts.variant ?? 'mainline';
  // Successors computed while finding the actions, kept for next(): at lock
  // granularity an action is enabled only if its step can take its locks,
  // known by running it; with ENOMEM injection a syscall is run once to count
  // its allocation points, which is also its successor without injection.
  const successors = new SuccessorMemo();
  /** Syscalls with their ENOMEM injections. */
  const syscalls = (s: State, issuer?: readonly number[], kind?: string): SyscallOp[] => {
    const base = enumerateOps(s, bounds, issuer, kind);
    if (s.budgets.enomem <= 0) return base;
    if (!lock) successors.begin(s);
    const out: SyscallOp[] = [];
    for (const op of base) {
      out.push(op);
      const r = runOp(mode, kernel, s, op);
      // At lock granularity the syscall run whole only counts the allocations.
      if (!lock) successors.set(op, r.next);
      for (let k = 1; k <= r.allocs; k++) out.push({ ...op, enomem: k });
    }
    return out;
  };
  /**
   * Every action lock granularity may offer in s (of one kind, if given),
   * enabled or not (a step or syscall that must wait for a lock is not).
   */
  const lockCandidates = (s: State, kind?: string): Op[] => {
    const candidates: Op[] = [];
    if (kind === undefined || kind === 'step') forEachThread(s, (t) => candidates.push({ kind: 'step', proc: t.id, pc: t.pc, enomem: 0 }));
    if (kind !== 'step' && kind !== 'walk') candidates.push(...syscalls(s, issuers(s, bounds.threads), kind));
    if (kind === undefined || kind === 'walk') candidates.push(...walkerStarts(s));
    return candidates;
  };
  /** The successor of s under op, or undefined when op must wait for a lock (not enabled). */
  const tryLockNext = (s: State, op: Op): State | undefined => {
    try {
      return applyLockOp(kernel, s, op, bounds.reduce, mode);
    } catch (e) {
      if (e instanceof WouldBlock) return undefined;
      throw e;
    }
  };
  const lockActions = (s: State): Op[] => {
    const candidates = lockCandidates(s);
    successors.begin(s);
    const out: Op[] = [];
    for (const op of candidates) {
      const t = tryLockNext(s, op);
      if (t === undefined) continue;
      successors.set(op, t);
      out.push(op);
    }
    return out;
  };
  const lockNext = (s: State, op: Op): State => {
    const known = successors.get(s, op);
    if (known !== undefined) return known;
    try {
      return applyLockOp(kernel, s, op, bounds.reduce, mode);
    } catch (e) {
      if (e instanceof WouldBlock) throw new ParseError(`"${formatOp(op)}": blocked: waits for ${e.lock}`);
      throw e;
    }
  };
  const syscallNext = (s: State, op: Op): State => successors.get(s, op) ?? applyOp(kernel, s, op as SyscallOp, mode);
  const properties = (opts.properties ?? ALL_PROPERTIES).map((p) =>
    p.id === noDeadlock.id && lock
      ? noDeadlockWith(
          (s, tid) => blockedOn(kernel, s, tid, mode),
          (s, tid) => stuckInStep(kernel, s, tid, mode),
        )
      : p,
  );
  let actions = lock ? lockActions : (s: State) => syscalls(s);
  let next = lock ? lockNext : syscallNext;
  // For walks (Model.candidates); at syscall granularity every operation listed is enabled: the candidates are the actions.
  let candidates = lock ? lockCandidates : (s: State, kind?: string) => syscalls(s, undefined, kind);
  let tryNext: (s: State, op: Op) => State | undefined = lock ? tryLockNext : next;
  if (opts.checkImmutability) {
    const [a, n, c, t] = [actions, next, candidates, tryNext];
    const frozen = <T>(f: () => T): T => {
      try {
        return f();
      } catch (e) {
        throw e instanceof TypeError && /read only|not extensible|Cannot delete/.test(e.message) ? mutationReport(name, e) : e;
      }
    };
    actions = (s) => frozen(() => a(deepFreeze(s)));
    next = (s, op) => frozen(() => n(deepFreeze(s), op));
    candidates = (s, kind) => frozen(() => c(deepFreeze(s), kind));
    tryNext = (s, op) => frozen(() => t(deepFreeze(s), op));
  }
  let search: MmModel | undefined;
  return {
    name,
    bounds,
    kernel,
    transitions: mode,
    properties,
    actionKinds: [...OP_KINDS.filter((k) => bounds.ops.includes(k)), ...(lock ? ['walk', 'step'] : [])],
    initial: () => initialState(bounds),
    actions,
    next,
    candidates,
    tryNext,
    ...(lock && bounds.por ? { ample: (s: State, ops: readonly Op[]) => ampleSet(s, ops, (op) => next(s, op), (x, op) => tryNext(x, op)) } : {}),
    forSearch: mode === 'cow' || opts.search === 'immer' ? undefined : () => (search ??= createMmModel({ ...opts, transitions: 'cow' })),
    encode: encodeState,
    encodeScratch: encodeStateScratch,
    pack: packMmState,
    packScratch: packMmStateScratch,
    unpack: unpackMmState,
    formatAction: (_s, op) => formatOp(op),
    parseAction(s, text) {
      const op = parseOp(text);
      validateOp(s, bounds, op, text);
      if (op.kind === 'step') return { ...op, pc: threadOf(s, op.proc)!.pc };
      return op;
    },
    actionKind: (op) => op.kind,
    evaluate: withStateView,
    isQuiescent: noThreads,
    isFinal: (s) => noThreads(s) && liveProcs(s) === 0,
  };
}

function noThreads(s: State): boolean {
  return !anyThread(s);
}
