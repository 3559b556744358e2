// The operation syntax (DESIGN.md §3): one syntax for the command line,
// scenario files and stored traces. Addresses and lengths are in pages.
//
//   P0 mmap 0 4 [prot] [close] [special] [nomerge]
//   P0 fault 1 w|r [large]  P0 fork            P1 exit
//   P1 munmap 1 1           P1 mprotect 0 2 r|rw|rx|rwx
//   P0 mremap OLD OLDLEN NEW NEWLEN [maymove,fixed,dontunmap,relocate]
//   P0 pin 1
//   W reclaim P0 1          W referenced P0 1   W migrate P0 1   (start an rmap walker, lock granularity)
//   P0 step                 W0 step             (the next step of a thread in flight)
// Any operation may end in `enomem=K`: the K-th allocation of that syscall
// fails with ENOMEM (an injected failure, counted against the budget).
import { ParseError } from '../../src/engine/model.ts';
import { MAX_THREADS, procOfThread, SIGSEGV, syscallThread, threadIndex, VM_EXEC, VM_NOMERGE, VM_READ, VM_SPECIAL, VM_WRITE, WALKER_BASE, WALKER_CODE, type Id, type WalkerKind } from './state.ts';
import type { MremapFlags } from './mremap.ts';

/**
 * A syscall, issued by thread `thread` of process `proc` (issue 17: `P0.1`
 * is thread 1 of P0; the field is absent for thread 0, so that `P0` ops and
 * states are what they were before threads).
 */
export type SyscallOp = (
  | { kind: 'mmap'; proc: Id; addr: number; len: number; prot: number; close: boolean; special: boolean; nomerge: boolean; enomem: number }
  | { kind: 'fault'; proc: Id; page: number; write: boolean; large: boolean; enomem: number }
  | { kind: 'fork'; proc: Id; enomem: number }
  | { kind: 'munmap'; proc: Id; addr: number; len: number; enomem: number }
  | { kind: 'mprotect'; proc: Id; addr: number; len: number; prot: number; enomem: number }
  | { kind: 'mremap'; proc: Id; addr: number; oldLen: number; newAddr: number; newLen: number; flags: MremapFlags; enomem: number }
  | { kind: 'pin'; proc: Id; page: number; enomem: number }
  | { kind: 'exit'; proc: Id; enomem: number }
) & { thread?: number };

/**
 * A thread action at lock granularity: start an rmap walker on the folio
 * mapped at proc's page, or run the next step of thread `proc` (a process id,
 * or WALKER_BASE + n for walker Wn). `pc` is the step's name, for display.
 */
export type ThreadOp =
  | { kind: 'walk'; walker: WalkerKind; proc: Id; page: number; enomem: 0 }
  | { kind: 'step'; proc: Id; pc: string; enomem: 0 };

export type Op = SyscallOp | ThreadOp;

/** The syscalls (the explorer's --ops alphabet). */
export type OpKind = SyscallOp['kind'];
export const OP_KINDS: readonly OpKind[] = ['mmap', 'fault', 'fork', 'munmap', 'mprotect', 'mremap', 'pin', 'exit'];

/**
 * The fields of each syscall but its kind and process, in a fixed order.
 * Checked at compile time to be all of them: a field added to an op and not
 * listed here is an error, not two ops encoded or packed alike.
 */
const OP_FIELDS = {
  mmap: ['addr', 'len', 'prot', 'close', 'special', 'nomerge', 'enomem'],
  fault: ['page', 'write', 'large', 'enomem'],
  fork: ['enomem'],
  munmap: ['addr', 'len', 'enomem'],
  mprotect: ['addr', 'len', 'prot', 'enomem'],
  mremap: ['addr', 'oldLen', 'newAddr', 'newLen', 'flags', 'enomem'],
  pin: ['page', 'enomem'],
  exit: ['enomem'],
} as const;
const MREMAP_FLAGS = ['maymove', 'fixed', 'dontunmap', 'relocate'] as const;
const BOOLEAN_FIELDS: ReadonlySet<string> = new Set(['close', 'special', 'nomerge', 'write', 'large']);
type Listed<T, L extends readonly PropertyKey[]> = [Exclude<keyof T, L[number] | 'kind' | 'proc' | 'thread'>] extends [never] ? true : false;
const OP_FIELDS_COMPLETE: { [K in OpKind]: Listed<Extract<SyscallOp, { kind: K }>, (typeof OP_FIELDS)[K]> } & {
  flags: Listed<MremapFlags, typeof MREMAP_FLAGS>;
} = { mmap: true, fault: true, fork: true, munmap: true, mprotect: true, mremap: true, pin: true, exit: true, flags: true };
void OP_FIELDS_COMPLETE;

/**
 * A syscall but its process as small integers: its kind (1 + index in
 * OP_KINDS), then its fields in OP_FIELDS order (booleans 0/1, mremap's
 * flags as bits). The canonical hash (canon.ts) and the pack (pack.ts) use it.
 */
export function opInts(op: SyscallOp, put: (x: number) => void): void {
  put(OP_KINDS.indexOf(op.kind) + 1);
  const o = op as unknown as Record<string, number | boolean | MremapFlags>;
  for (const f of OP_FIELDS[op.kind]) {
    const x = o[f]!;
    if (typeof x === 'object') {
      let bits = 0;
      for (let i = 0; i < MREMAP_FLAGS.length; i++) if (x[MREMAP_FLAGS[i]!]) bits |= 1 << i;
      put(bits);
    } else put(typeof x === 'boolean' ? (x ? 1 : 0) : x);
  }
}

/** The op of process proc that opInts wrote, its integers read by take. */
export function opFromInts(proc: Id, take: () => number): SyscallOp {
  const kind = OP_KINDS[take() - 1];
  if (kind === undefined) throw new Error('opFromInts: not an op');
  const o: Record<string, unknown> = { kind, proc };
  for (const f of OP_FIELDS[kind]) {
    const x = take();
    if (f === 'flags') {
      const flags: Record<string, boolean> = {};
      MREMAP_FLAGS.forEach((g, i) => (flags[g] = (x & (1 << i)) !== 0));
      o[f] = flags;
    } else o[f] = BOOLEAN_FIELDS.has(f) ? x !== 0 : x;
  }
  return o as unknown as SyscallOp;
}

export const isSyscall = (op: Op): op is SyscallOp => op.kind !== 'walk' && op.kind !== 'step';

/** A thread's name in traces: P<i> for a process's thread 0, P<i>.<t> for its thread t, W<n> for a walker. */
export function threadName(id: Id): string {
  if (id >= WALKER_BASE) return `W${id - WALKER_BASE}`;
  const index = threadIndex(id);
  return index === 0 ? `P${id}` : `P${procOfThread(id)}.${index}`;
}

/** The id of the thread that issues op. */
export const opThread = (op: SyscallOp): Id => syscallThread(op.proc, op.thread ?? 0);

const PROTS: Record<string, number> = { r: VM_READ, rw: VM_READ | VM_WRITE, rx: VM_READ | VM_EXEC, rwx: VM_READ | VM_WRITE | VM_EXEC };

export function protName(flags: number): string {
  return (flags & VM_READ ? 'r' : '') + (flags & VM_WRITE ? 'w' : '') + (flags & VM_EXEC ? 'x' : '');
}

/** Split a scenario into operations: ';' or newlines separate, '#' starts a comment. */
export function splitOps(text: string): string[] {
  return text
    .split(/[;\n]/)
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line.length > 0);
}

function int(op: string, what: string, tok: string | undefined): number {
  if (tok === undefined) throw new ParseError(`"${op}": missing ${what}`);
  if (!/^\d+$/.test(tok)) throw new ParseError(`"${op}": ${what} must be a non-negative integer, got "${tok}"`);
  return Number(tok);
}

function prot(op: string, tok: string | undefined): number {
  if (tok === undefined) throw new ParseError(`"${op}": missing prot (r, rw, rx or rwx)`);
  const p = PROTS[tok];
  if (p === undefined) throw new ParseError(`"${op}": prot must be r, rw, rx or rwx, got "${tok}"`);
  return p;
}

function noMore(op: string, rest: string[]): void {
  if (rest.length > 0) throw new ParseError(`"${op}": unexpected "${rest.join(' ')}"`);
}

/** Parse one operation; throws ParseError naming the operation and the problem. */
export function parseOp(text: string): Op {
  // A trailing comment (a step's name in a stored trace) is not part of the operation.
  const op = text.replace(/#.*/, '').trim();
  let toks = op.split(/\s+/);
  let enomem = 0;
  const last = toks[toks.length - 1];
  if (last !== undefined && last.startsWith('enomem=')) {
    enomem = int(op, 'enomem allocation number', last.slice('enomem='.length));
    if (enomem < 1) throw new ParseError(`"${op}": enomem=K counts allocations from 1`);
    toks = toks.slice(0, -1);
  }
  const [who, kind, ...args] = toks;
  if (who === 'W') {
    if (kind === undefined || !Object.hasOwn(WALKER_CODE, kind))
      throw new ParseError(`"${op}": a walker is "W <kind> P<i> <page>", kind one of ${Object.keys(WALKER_CODE).join(', ')}`);
    const at = args[0];
    if (at === undefined || !/^P\d+$/.test(at)) throw new ParseError(`"${op}": a walker starts on the folio mapped at a process's page, like P0 1`);
    const page = int(op, 'page', args[1]);
    noMore(op, args.slice(2));
    if (enomem > 0) throw new ParseError(`"${op}": a walker allocates nothing (no enomem=K)`);
    return { kind: 'walk', walker: kind as WalkerKind, proc: Number(at.slice(1)), page, enomem: 0 };
  }
  if (who !== undefined && /^W\d+$/.test(who)) {
    if (kind !== 'step') throw new ParseError(`"${op}": a walker thread only takes "step", like ${who} step`);
    noMore(op, args);
    return { kind: 'step', proc: WALKER_BASE + Number(who.slice(1)), pc: '', enomem: 0 };
  }
  const named = who === undefined ? null : /^P(\d+)(?:\.(\d+))?$/.exec(who);
  if (named === null) throw new ParseError(`"${op}": an operation starts with a process (or a thread of one), like P0 or P0.1`);
  const proc = Number(named[1]);
  const thread = named[2] === undefined ? 0 : Number(named[2]);
  if (thread >= MAX_THREADS) throw new ParseError(`"${op}": a process has threads 0 to ${MAX_THREADS - 1}`);
  if (kind === 'step') {
    noMore(op, args);
    if (enomem > 0) throw new ParseError(`"${op}": enomem=K goes on the syscall, not on a step`);
    return { kind: 'step', proc: syscallThread(proc, thread), pc: '', enomem: 0 };
  }
  const sys = parseSyscall(op, kind, proc, args, enomem);
  if (thread > 0) sys.thread = thread;
  return sys;
}

function parseSyscall(op: string, kind: string | undefined, proc: Id, args: string[], enomem: number): SyscallOp {
  switch (kind) {
    case 'mmap': {
      const addr = int(op, 'address', args[0]);
      const len = int(op, 'length', args[1]);
      if (len < 1) throw new ParseError(`"${op}": length must be at least 1`);
      let p = VM_READ | VM_WRITE;
      let close = false;
      let special = false;
      let nomerge = false;
      for (const a of args.slice(2)) {
        if (a in PROTS) p = PROTS[a]!;
        else if (a === 'close') close = true;
        else if (a === 'special') special = true;
        else if (a === 'nomerge') nomerge = true;
        else throw new ParseError(`"${op}": unknown mmap attribute "${a}" (prot, close, special, nomerge)`);
      }
      return { kind, proc, addr, len, prot: p, close, special, nomerge, enomem };
    }
    case 'fault': {
      const page = int(op, 'page', args[0]);
      const rw = args[1];
      if (rw !== 'w' && rw !== 'r') throw new ParseError(`"${op}": fault takes w or r after the page`);
      const large = args[2] === 'large';
      if (large && rw !== 'w') throw new ParseError(`"${op}": only a write fault allocates a large folio`);
      noMore(op, args.slice(large ? 3 : 2));
      return { kind, proc, page, write: rw === 'w', large, enomem };
    }
    case 'fork':
    case 'exit':
      noMore(op, args);
      return { kind, proc, enomem };
    case 'munmap': {
      const addr = int(op, 'address', args[0]);
      const len = int(op, 'length', args[1]);
      if (len < 1) throw new ParseError(`"${op}": length must be at least 1`);
      noMore(op, args.slice(2));
      return { kind, proc, addr, len, enomem };
    }
    case 'mprotect': {
      const addr = int(op, 'address', args[0]);
      const len = int(op, 'length', args[1]);
      if (len < 1) throw new ParseError(`"${op}": length must be at least 1`);
      const p = prot(op, args[2]);
      noMore(op, args.slice(3));
      return { kind, proc, addr, len, prot: p, enomem };
    }
    case 'mremap': {
      const addr = int(op, 'old address', args[0]);
      const oldLen = int(op, 'old length', args[1]);
      const newAddr = int(op, 'new address', args[2]);
      const newLen = int(op, 'new length', args[3]);
      if (oldLen < 1 || newLen < 1) throw new ParseError(`"${op}": lengths must be at least 1`);
      const flags: MremapFlags = { maymove: false, fixed: false, dontunmap: false, relocate: false };
      if (args[4] !== undefined) {
        for (const f of args[4].split(',')) {
          if (!(f in flags)) throw new ParseError(`"${op}": unknown mremap flag "${f}" (maymove, fixed, dontunmap, relocate)`);
          flags[f as keyof MremapFlags] = true;
        }
      }
      noMore(op, args.slice(5));
      return { kind, proc, addr, oldLen, newAddr, newLen, flags, enomem };
    }
    case 'pin': {
      const page = int(op, 'page', args[0]);
      noMore(op, args.slice(1));
      return { kind, proc, page, enomem };
    }
    default:
      throw new ParseError(`"${op}": unknown syscall "${kind ?? ''}" (${OP_KINDS.join(', ')})`);
  }
}

/** Print an operation in the syntax parseOp reads (a step's name follows as a comment). */
export function formatOp(op: Op): string {
  if (op.kind === 'walk') return `W ${op.walker} P${op.proc} ${op.page}`;
  if (op.kind === 'step') return `${threadName(op.proc)} step${op.pc ? `  # ${op.pc}` : ''}`;
  const p = threadName(opThread(op));
  const suffix = op.enomem > 0 ? ` enomem=${op.enomem}` : '';
  switch (op.kind) {
    case 'mmap': {
      const attrs = [op.prot !== (VM_READ | VM_WRITE) ? protName(op.prot) : '', op.close ? 'close' : '', op.special ? 'special' : '', op.nomerge ? 'nomerge' : '']
        .filter((a) => a !== '')
        .join(' ');
      return `${p} mmap ${op.addr} ${op.len}${attrs ? ' ' + attrs : ''}${suffix}`;
    }
    case 'fault':
      return `${p} fault ${op.page} ${op.write ? 'w' : 'r'}${op.large ? ' large' : ''}${suffix}`;
    case 'fork':
    case 'exit':
      return `${p} ${op.kind}${suffix}`;
    case 'munmap':
      return `${p} munmap ${op.addr} ${op.len}${suffix}`;
    case 'mprotect':
      return `${p} mprotect ${op.addr} ${op.len} ${protName(op.prot)}${suffix}`;
    case 'mremap': {
      const f = (Object.keys(op.flags) as (keyof MremapFlags)[]).filter((k) => op.flags[k]).join(',');
      return `${p} mremap ${op.addr} ${op.oldLen} ${op.newAddr} ${op.newLen}${f ? ' ' + f : ''}${suffix}`;
    }
    case 'pin':
      return `${p} pin ${op.page}${suffix}`;
  }
}

/** The vm_flags of a new mapping described by an mmap op. */
export function mmapFlags(op: Extract<Op, { kind: 'mmap' }>): number {
  return op.prot | (op.special ? VM_SPECIAL : 0) | (op.nomerge ? VM_NOMERGE : 0);
}

/** The highest page + 1 an operation touches. */
export function opHighPage(op: Op): number {
  switch (op.kind) {
    case 'mmap':
    case 'munmap':
    case 'mprotect':
      return op.addr + op.len;
    case 'mremap':
      return Math.max(op.addr + op.oldLen, op.newAddr + op.newLen);
    case 'fault':
      return op.page + (op.large ? 2 : 1);
    case 'pin':
    case 'walk':
      return op.page + 1;
    default:
      return 0;
  }
}

/** The length of a range operation, in pages (0 for the others). */
export function opLength(op: Op): number {
  switch (op.kind) {
    case 'mmap':
    case 'munmap':
    case 'mprotect':
      return op.len;
    case 'mremap':
      return Math.max(op.oldLen, op.newLen);
    default:
      return 0;
  }
}

/** What a trace uses, in the terms of the explorer's bounds (models/mm/model.ts Bounds). */
export interface TraceExtent {
  /** Most processes alive at once. */
  procs: number;
  /** Highest page touched + 1. */
  pages: number;
  /** Longest mmap/munmap/mprotect/mremap length. */
  maxLen: number;
  /** ENOMEM injections. */
  enomem: number;
  /** Walkers started. */
  walkers: number;
  /** Threads a process uses (1 + the highest `P<i>.<t>` index). */
  threads: number;
  largeFolios: boolean;
  relocate: boolean;
  /** It steps threads or starts walkers: lock granularity. */
  lock: boolean;
}

/**
 * The extent of a trace (run, replay, simulate's shrinking). A malformed
 * operation is passed over: the replay that follows reports it, with its step.
 */
export function traceExtent(trace: readonly string[]): TraceExtent {
  const e: TraceExtent = { procs: 1, pages: 1, maxLen: 1, enomem: 0, walkers: 0, threads: 1, largeFolios: false, relocate: false, lock: false };
  let alive = 1;
  for (const t of trace) {
    let op: Op;
    try {
      op = parseOp(t);
    } catch (err) {
      if (err instanceof ParseError) continue;
      throw err;
    }
    e.pages = Math.max(e.pages, opHighPage(op));
    e.maxLen = Math.max(e.maxLen, opLength(op));
    if (op.enomem > 0) e.enomem++;
    if (op.kind === 'walk') e.walkers++;
    if (op.kind === 'walk' || op.kind === 'step') e.lock = true;
    const thread = op.kind === 'step' ? (op.proc < WALKER_BASE ? threadIndex(op.proc) : 0) : op.kind === 'walk' ? 0 : (op.thread ?? 0);
    if (thread > 0) e.threads = Math.max(e.threads, thread + 1);
    if (op.kind === 'fault' && op.large) e.largeFolios = true;
    if (op.kind === 'mremap' && op.flags.relocate) e.relocate = true;
    if (op.kind === 'fork') e.procs = Math.max(e.procs, ++alive);
    if (op.kind === 'exit') alive--;
  }
  return e;
}

const ERRNO_NAMES: Record<number, string> = { [-12]: 'ENOMEM', [-14]: 'EFAULT', [-16]: 'EBUSY', [-17]: 'EEXIST', [-22]: 'EINVAL' };

/** A syscall's result as the user sees it: 0, -ENOMEM, ..., or SIGSEGV for a fault the kernel answers with the signal. */
export function formatResult(ret: number): string {
  if (ret === SIGSEGV) return 'SIGSEGV';
  const name = ERRNO_NAMES[ret];
  return name !== undefined ? `-${name}` : String(ret);
}
