// What simulate and shrink know of the mm model's operations (the engine,
// src/engine/simulate.ts and shrink.ts, knows only the Model interface):
// swarm configurations (a subset of the syscalls, smaller bounds) as a
// filter on the full model's actions; the simplifications the shrinker
// tries (drop a process, shorter lengths, lower addresses, simpler flags);
// and the bounds a trace uses, for the exhaustive search for a shorter one.
import { formatOp, OP_KINDS, opHighPage, opLength, parseOp, traceExtent, type Op } from '../../models/mm/ops.ts';
import { liveProcs, procOfThread, WALKER_BASE, type State } from '../../models/mm/state.ts';
import { pick, type Swarm, type SwarmSpec } from '../engine/simulate.ts';
import type { Bounds } from './common.ts';
import { createMmModel, type MmModel } from '../../models/mm/model.ts';

// ---------------------------------------------------------------- swarm

/** Every kind of action, numbered for the swarm's per-kind flags. */
const KIND_NAMES: readonly Op['kind'][] = [...OP_KINDS, 'walk', 'step'];
const KIND_INDEX = Object.fromEntries(KIND_NAMES.map((k, i) => [k, i])) as Record<Op['kind'], number>;

/** A swarm configuration's bounds as a number: which of all's ops it keeps (a bit each), then procs, pages, max-len (below 256 each). */
function narrowKey(all: readonly string[], ops: readonly string[], procs: number, pages: number, maxLen: number): number {
  let mask = 0;
  for (let i = 0; i < all.length; i++) if (ops.includes(all[i]!)) mask |= 1 << i;
  return ((mask * 256 + procs) * 256 + pages) * 256 + maxLen;
}

/**
 * The swarm of the mm model under `bounds` (called in each worker with the
 * model): each walk draws a nonempty random subset of the syscalls, procs,
 * pages and max-len at most the bounds, whether ENOMEM injections and
 * walkers are offered; the thread steps of lock granularity are always.
 */
export function mmSwarm(bounds: Bounds, weighted = true, model?: MmModel): Swarm<State, Op> {
  // The model under each configuration's bounds, made once per configuration:
  // it enumerates only what the configuration may do (enumerating the whole
  // alphabet to filter it took an eighth of a walk).
  const narrowed = new Map<number, MmModel>();
  // key: the configuration's ops (a subset of bounds.ops, as a bit mask), procs, pages and max-len.
  const narrow = (m: MmModel, key: number, b: () => Bounds): MmModel => {
    let n = narrowed.get(key);
    if (n === undefined) narrowed.set(key, (n = createMmModel({ name: m.name, kernel: m.kernel, bounds: b(), properties: m.properties, transitions: m.transitions })));
    return n;
  };
  return (rand, root) => {
    let ops = bounds.ops.filter(() => rand() < 0.5);
    if (ops.length === 0) ops = [bounds.ops[pick(rand, bounds.ops.length)]!];
    const procs = 1 + pick(rand, bounds.procs);
    const pages = 1 + pick(rand, bounds.pages);
    const maxLen = 1 + pick(rand, Math.min(bounds.maxLen, pages));
    const enomem = bounds.enomem > 0 && rand() < 0.5;
    const lock = bounds.granularity === 'lock';
    const walkers = lock && bounds.walkers > 0 && rand() < 0.5;
    const kinds: Op['kind'][] = [...ops, ...(lock ? ['step' as const] : []), ...(walkers ? ['walk' as const] : [])];
    // Per kind (KIND_INDEX): whether the walk may take it.
    const kindAllowed = new Array<boolean>(KIND_NAMES.length).fill(false);
    for (const k of kinds) kindAllowed[KIND_INDEX[k]] = true;
    // Each kind's share of the draws: a syscall with many argument
    // combinations (mremap, fault) would otherwise crowd out fork and exit
    // (simulate.ts, walkStep).
    const shares = weighted ? kinds.map((kind) => ({ kind, share: 0.05 + rand() })) : undefined;
    // Without injections, a root whose ENOMEM budget is spent: the model
    // then no longer counts every syscall's allocations at every step.
    const noBudget = !enomem && root.budgets.enomem > 0 ? { root: { ...root, budgets: { ...root.budgets, enomem: 0 } } } : {};
    return {
      ...noBudget,
      ...(model ? { model: narrow(model, narrowKey(bounds.ops, ops, procs, pages, maxLen), () => ({ ...model.bounds, ops, procs, pages, maxLen })) } : {}),
      describe() {
        return `ops ${ops.join(',')}; procs ${procs}; pages ${pages}; max-len ${maxLen}${bounds.enomem > 0 ? `; enomem ${enomem ? 'on' : 'off'}` : ''}${bounds.granularity === 'lock' ? `; walkers ${walkers ? 'on' : 'off'}` : ''}`;
      },
      ...(shares ? { kinds: shares } : {}),
      allow(s, a) {
        if (!kindAllowed[KIND_INDEX[a.kind]]) return false;
        if (a.enomem > 0 && !enomem) return false;
        if (a.kind === 'fork' && liveProcs(s) >= procs) return false;
        return opHighPage(a) <= pages && opLength(a) <= maxLen;
      },
    };
  };
}

/** How the simulate workers rebuild the swarm (src/engine/simulate.ts). */
export function mmSwarmSpec(bounds: Bounds): SwarmSpec {
  return { module: import.meta.url, export: 'mmSwarmOf', args: bounds };
}

export const mmSwarmOf = (bounds: Bounds, model: MmModel): Swarm<State, Op> => mmSwarm(bounds, true, model);

// ---------------------------------------------------------------- shrinking

/**
 * A trace with processes named by the fork that created them (-1: P0):
 * removing a fork and re-rendering renumbers every later process, since the
 * model gives a child the next process id.
 */
interface Symbolic {
  ops: Op[];
  /** The creating fork (index into ops) of each op's process, or -1; undefined for walker threads. */
  owner: (number | undefined)[];
}

function toSymbolic(trace: readonly string[]): Symbolic | undefined {
  const ops: Op[] = [];
  const owner: (number | undefined)[] = [];
  const byId = new Map<number, number>([[0, -1]]);
  let nextId = 1;
  for (let i = 0; i < trace.length; i++) {
    let op: Op;
    try {
      op = parseOp(trace[i]!);
    } catch {
      return undefined;
    }
    ops.push(op);
    if (op.proc >= WALKER_BASE) owner.push(undefined);
    else {
      const o = byId.get(op.kind === 'step' ? procOfThread(op.proc) : op.proc);
      if (o === undefined) return undefined;
      owner.push(o);
    }
    if (op.kind === 'fork') byId.set(nextId++, i);
  }
  return { ops, owner };
}

/** Render the ops kept (keep[i]) with process ids renumbered; `owners` replaces the owner table. */
function render(sym: Symbolic, keep: (i: number) => boolean, edit?: (op: Op, i: number) => Op, owners = sym.owner): string[] {
  const idOf = new Map<number, number>([[-1, 0]]);
  let nextId = 1;
  const out: string[] = [];
  for (let i = 0; i < sym.ops.length; i++) {
    if (!keep(i)) continue;
    let op = sym.ops[i]!;
    const o = owners[i];
    if (o !== undefined) {
      const id = idOf.get(o);
      if (id === undefined) continue; // its process was dropped
      // A step names its thread: the process renumbered, the thread's index kept.
      op = { ...op, proc: op.kind === 'step' ? id + (op.proc - procOfThread(op.proc)) : id };
    }
    if (edit) op = edit(op, i);
    out.push(formatOp(op));
    if (op.kind === 'fork') idOf.set(i, nextId++);
  }
  return out;
}

/** The same op with every address and page lowered by d (undefined below 0). */
function shiftOp(op: Op, d: number): Op | undefined {
  switch (op.kind) {
    case 'mmap':
    case 'munmap':
    case 'mprotect':
      return op.addr >= d ? { ...op, addr: op.addr - d } : undefined;
    case 'mremap':
      return op.addr >= d && op.newAddr >= d ? { ...op, addr: op.addr - d, newAddr: op.newAddr - d } : undefined;
    case 'fault':
    case 'pin':
    case 'walk':
      return op.page >= d ? { ...op, page: op.page - d } : undefined;
    default:
      return op;
  }
}

/** Simpler forms of one op: shorter, lower, fewer flags, no injected failure. */
function simplerOps(op: Op): Op[] {
  const out: Op[] = [];
  if (op.enomem > 1) out.push({ ...op, enomem: op.enomem - 1 } as Op);
  if (op.enomem > 0) out.push({ ...op, enomem: 0 } as Op);
  switch (op.kind) {
    case 'mmap':
    case 'munmap':
    case 'mprotect':
      if (op.len > 1) out.push({ ...op, len: op.len - 1 }, { ...op, addr: op.addr + 1, len: op.len - 1 });
      break;
    case 'mremap':
      if (op.oldLen > 1 && op.newLen > 1) out.push({ ...op, oldLen: op.oldLen - 1, newLen: op.newLen - 1 });
      if (op.oldLen > 1) out.push({ ...op, oldLen: op.oldLen - 1 });
      if (op.newLen > 1) out.push({ ...op, newLen: op.newLen - 1 });
      if (op.flags.dontunmap) out.push({ ...op, flags: { ...op.flags, dontunmap: false } });
      if (op.newAddr > 0 && op.newAddr !== op.addr) out.push({ ...op, newAddr: op.newAddr - 1 });
      break;
    case 'fault':
      if (op.large) out.push({ ...op, large: false });
      break;
  }
  const lower = shiftOp(op, 1);
  if (lower && op.kind !== 'mremap') out.push(lower);
  return out;
}

/**
 * The shrinker's simplifications of an mm trace (src/engine/shrink.ts):
 * drop a process (its fork and everything it and its descendants do, later
 * processes renumbered), lower every address at once, then simplify one
 * operation at a time.
 */
export function* simplifyMmTrace(trace: readonly string[]): Generator<string[]> {
  const sym = toSymbolic(trace);
  if (!sym) return;
  const n = sym.ops.length;
  // Drop a process, the last created first.
  for (let f = n - 1; f >= 0; f--) {
    if (sym.ops[f]!.kind !== 'fork') continue;
    yield render(sym, (i) => i !== f);
  }
  // A process's operations done by its parent instead (its fork gone),
  // with or without the parent's exit.
  for (let f = 0; f < n; f++) {
    if (sym.ops[f]!.kind !== 'fork') continue;
    const parent = sym.owner[f];
    const owners = sym.owner.map((o) => (o === f ? parent : o));
    yield render(sym, (i) => i !== f, undefined, owners);
    yield render(sym, (i) => i !== f && !(sym.ops[i]!.kind === 'exit' && sym.owner[i] === parent), undefined, owners);
  }
  // Everything one page lower.
  const shifted = sym.ops.map((op) => shiftOp(op, 1));
  if (shifted.every((op) => op !== undefined)) yield render(sym, () => true, (_op, i) => ({ ...shifted[i]!, proc: _op.proc }));
  // One operation at a time.
  for (let i = 0; i < n; i++) for (const simpler of simplerOps(sym.ops[i]!)) yield render(sym, () => true, (op, j) => (j === i ? { ...simpler, proc: op.proc } : op));
}

/** What the shrinker minimises after the length: processes, then the sum of addresses, lengths and injection numbers. */
export function mmTraceSize(trace: readonly string[]): number[] {
  let forks = 0;
  let operands = 0;
  for (const t of trace) {
    let op: Op;
    try {
      op = parseOp(t);
    } catch {
      return [Infinity];
    }
    if (op.kind === 'fork') forks++;
    operands += op.enomem + op.proc;
    switch (op.kind) {
      case 'mmap':
      case 'munmap':
      case 'mprotect':
        operands += op.addr + op.len;
        break;
      case 'mremap':
        operands += op.addr + op.oldLen + op.newAddr + op.newLen + Object.values(op.flags).filter(Boolean).length;
        break;
      case 'fault':
        operands += op.page + (op.large ? 1 : 0);
        break;
      case 'pin':
      case 'walk':
        operands += op.page;
        break;
    }
  }
  return [forks, operands];
}

/**
 * The bounds a trace uses: the most processes alive at once, the highest
 * page, the longest length, its ENOMEM injections (and walkers, large
 * folios, relocation); the syscalls and the rest from `base`, so that a
 * shorter trace may use a syscall this one does not.
 */
export function traceBounds(trace: readonly string[], base: Bounds): Bounds {
  const { procs, pages, maxLen, enomem, walkers, threads, largeFolios, relocate } = traceExtent(trace);
  return { ...base, procs, pages, maxLen, enomem, walkers, threads, largeFolios, relocate };
}
