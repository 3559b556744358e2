// The public JSON shape of a state (DESIGN.md §2) and the display names
// shared by every report. Names are the model's own ids (P1, A3, F2): the
// operation syntax names processes by id, property details name objects by
// id, and a trace replays to the same ids, so one name means one object in
// the trace, the pictures and the violation text alike.

import type { Violation } from '../engine/model.ts';
import {
  NIL,
  VM_EXEC,
  VM_NOMERGE,
  VM_READ,
  VM_SPECIAL,
  VM_WRITE,
  ZERO_PAGE,
  values,
  type Id,
  type State,
  type Thread,
  type Vma,
  ptePages,
} from '../../models/mm/state.ts';
import { formatOp, formatResult, threadName } from '../../models/mm/ops.ts';
import { contentName } from '../../properties/user.ts';
import { lockName } from '../../models/mm/locks.ts';

/** Display names of one state's objects. The one naming helper of src/report/. */
export interface Names {
  mm(id: Id): string;
  anonVma(id: Id): string;
  folio(id: Id): string;
  /** A VMA as "P1:0-4" (process and page range). */
  vma(id: Id): string;
  /** What a PTE maps: a folio name or "zero". */
  pteTarget(folio: Id): string;
}

/** Names of ids that are not in the table (dangling) are still printable. */
const named = (table: Record<Id, unknown>, id: Id, prefix: string): string =>
  id === NIL ? 'none' : table[id] !== undefined ? `${prefix}${id}` : `${prefix}?${id}`;

export function displayNames(s: State): Names {
  const names: Names = {
    mm: (id) => named(s.mms, id, 'P'),
    anonVma: (id) => named(s.anonVmas, id, 'A'),
    folio: (id) => named(s.folios, id, 'F'),
    vma: (id) => {
      const v = s.vmas[id];
      return v ? `${names.mm(v.mm)}:${v.start}-${v.end}` : `vma?${id}`;
    },
    pteTarget: (folio) => (folio === ZERO_PAGE ? 'zero' : names.folio(folio)),
  };
  return names;
}

/** "r", "rw", "rx", "rwx" or "" from VM_READ, VM_WRITE, VM_EXEC. */
export function protString(flags: number): string {
  return (flags & VM_READ ? 'r' : '') + (flags & VM_WRITE ? 'w' : '') + (flags & VM_EXEC ? 'x' : '');
}

/** The non-protection flags a report shows: special, close, nomerge. */
export function vmaMarks(v: Vma): string[] {
  const out: string[] = [];
  if (v.flags & VM_SPECIAL) out.push('special');
  if (v.hasClose) out.push('close');
  if (v.flags & VM_NOMERGE) out.push('nomerge');
  if (!v.attached) out.push('detached');
  return out;
}

/** The anon_vmas of a VMA's chain, in list order, head first. */
export function chainAnonVmas(s: State, v: Vma): Id[] {
  return v.chain.map((avc) => s.avcs[avc]?.anonVma ?? NIL);
}

/** An mm is alive unless the model marks it otherwise. */
export function mmAlive(m: object): boolean {
  return (m as { alive?: boolean }).alive !== false;
}

/** Count of pages in `exclusive` bitmask set (PageAnonExclusive for small folios: bit 0). */
const anyBit = (mask: number): boolean => mask !== 0;

export interface VmaJson {
  start: number;
  end: number;
  pgoff: number;
  prot: string;
  anonVma: string | null;
  chain: string[];
  flags: string[];
}

export interface StateJson {
  mms: {
    id: string;
    alive: boolean;
    vmas: VmaJson[];
    ptes: { page: number; folio: string; writable: boolean }[];
    /** The reference model: what the process must read at each mapped page (zeros, v<N>, swapped-out content). */
    expects: { page: number; content: string }[];
  }[];
  anonVmas: {
    id: string;
    root: string;
    parent: string;
    refcount: number;
    numChildren: number;
    numActiveVmas: number;
    freed: boolean;
    tree: string[];
    ext?: Record<string, number>;
  }[];
  folios: {
    id: string;
    anonVma: string | null;
    index: number;
    mapcount: number;
    exclusive: boolean;
    pinned: boolean;
    nrPages: number;
    /** Contents per page of the folio (zeros or v<N>). */
    data: string[];
  }[];
  /** The syscall that completed in the step that made this state, when it failed (SIGSEGV, -ENOMEM, ...). */
  result?: { process: string; result: string };
  /** Threads in flight at lock granularity. */
  threads: ThreadJson[];
  warnings: string[];
  violations: Violation[];
}

export interface ThreadJson {
  /** P<i> for a syscall, W<n> for a walker. */
  id: string;
  /** The syscall in the operation syntax. */
  syscall?: string;
  walker?: string;
  /** The walker's folio. */
  folio?: string;
  /** The kernel function its next step starts in. */
  at: string;
  /** Locks held across steps, in acquisition order. */
  holds: string[];
}

export function threadToJson(t: Thread): ThreadJson {
  return {
    id: threadName(t.id),
    ...(t.op !== undefined ? { syscall: formatOp(t.op) } : {}),
    ...(t.walker !== undefined ? { walker: t.walker, folio: `F${t.folios[0] ?? '?'}` } : {}),
    at: t.pc,
    holds: t.held.map((h) => `${lockName(h.cls, h.id)}${h.write ? '' : ' (read)'}`),
  };
}

/** The state in the public JSON shape of DESIGN.md §2, with canonical display ids. */
export function stateToJson(s: State, violations: readonly Violation[] = []): StateJson {
  const n = displayNames(s);
  const opt = (id: Id, f: (id: Id) => string): string | null => (id === NIL ? null : f(id));
  return {
    mms: values(s.mms)
      .sort((a, b) => a.id - b.id)
      .map((m) => ({
        id: n.mm(m.id),
        alive: mmAlive(m),
        vmas: m.vmas
          .map((id) => s.vmas[id])
          .filter((v): v is Vma => v !== undefined)
          .map((v) => ({
            start: v.start,
            end: v.end,
            pgoff: v.pgoff,
            prot: protString(v.flags),
            anonVma: opt(v.anonVma, n.anonVma),
            chain: chainAnonVmas(s, v).map(n.anonVma),
            flags: vmaMarks(v),
          })),
        ptes: ptePages(m.ptes).map((page) => {
          const p = m.ptes[page]!;
          return { page, folio: n.pteTarget(p.folio), writable: p.writable };
        }),
        expects: m.user.flatMap((x, page) => (x === undefined ? [] : [{ page, content: contentName(x) }])),
      })),
    anonVmas: values(s.anonVmas)
      .sort((a, b) => a.id - b.id)
      .map((a) => ({
        id: n.anonVma(a.id),
        root: n.anonVma(a.root),
        parent: n.anonVma(a.parent),
        refcount: a.refcount,
        numChildren: a.numChildren,
        numActiveVmas: a.numActiveVmas,
        freed: a.freed,
        tree: a.tree.map((avc) => {
          const c = s.avcs[avc];
          return c ? n.vma(c.vma) : `avc?${avc}`;
        }),
        ...(a.ext && Object.keys(a.ext).length > 0 ? { ext: { ...a.ext } } : {}),
      })),
    folios: values(s.folios)
      .sort((a, b) => a.id - b.id)
      .map((f) => ({
        id: n.folio(f.id),
        anonVma: opt(f.anonVma, n.anonVma),
        index: f.index,
        mapcount: f.mapcount,
        exclusive: anyBit(f.exclusive),
        pinned: f.pinned,
        nrPages: f.nrPages,
        data: f.data.map((x) => contentName(x)),
      })),
    ...(s.result !== undefined && s.result.ret !== 0 ? { result: { process: n.mm(s.result.proc), result: formatResult(s.result.ret) } } : {}),
    threads: values(s.threads)
      .sort((a, b) => a.id - b.id)
      .map(threadToJson),
    warnings: [...s.warnings],
    violations: violations.map((v) => ({ property: v.property, detail: v.detail })),
  };
}
