// The explorer's states, as the model makes them and as unpacking makes them,
// give each kind of record one hidden class in V8: a kind with two makes
// every reader of it polymorphic, and optimised code deoptimises when the
// second appears (a VMA literal that spread its lock fields had eleven
// fields in the object and one beside it; unpacked lists were holey; page
// tables were empty, packed or holey by the order their PTEs came in). The
// same for the kernel context every model function reads: a step used to
// add its thread and lock point to it after the literal.
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { setAutoFreeze } from 'immer';
import { createMmModel, type MmModelOptions } from '../models/mm/model.ts';
import type { State } from '../models/mm/state.ts';
import { makeCtx } from '../models/mm/ctx.ts';
import { emptyThread } from '../models/mm/sched.ts';
import { mainlineKernel } from '../models/mm/kernel.ts';

setFlagsFromString('--allow-natives-syntax');
// Compiled after the flag is set: V8's own test of two objects' hidden classes.
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

/** Each table of a state: the kind of its records, and the lists in them. */
const RECORDS: readonly [keyof State & ('mms' | 'vmas' | 'anonVmas' | 'avcs' | 'folios' | 'threads'), string, readonly string[]][] = [
  ['mms', 'Mm', ['vmas', 'ptes', 'user']],
  ['vmas', 'Vma', ['chain']],
  ['anonVmas', 'AnonVma', ['tree']],
  ['avcs', 'Avc', []],
  ['folios', 'Folio', ['data']],
  ['threads', 'Thread', ['held', 'seen', 'vmas']],
];

/** Per kind, one object of each hidden class seen, and where the first of each came from. */
function hiddenClasses(bounds: MmModelOptions['bounds'], depth: number): Map<string, string[]> {
  setAutoFreeze(false);
  const model = createMmModel({ bounds, transitions: 'cow' });
  const seen = new Map<string, { reps: object[]; from: string[] }>();
  const note = (kind: string, o: object, from: string): void => {
    let e = seen.get(kind);
    if (e === undefined) seen.set(kind, (e = { reps: [], from: [] }));
    if (!e.reps.some((r) => haveSameMap(r, o))) {
      e.reps.push(o);
      e.from.push(from);
    }
  };
  const visit = (s: State, from: string): void => {
    note('State', s, from);
    note('budgets', s.budgets, from);
    note('nextId', s.nextId, from);
    for (const [table, kind, lists] of RECORDS)
      for (const r of Object.values(s[table]) as Record<string, object>[]) {
        note(kind, r, from);
        for (const l of lists) note(`${kind}.${l}`, r[l]!, from);
      }
  };
  let frontier = [model.unpack!(model.pack!(model.initial()))];
  for (let d = 0; d < depth; d++) {
    const next: State[] = [];
    for (const s of frontier)
      for (const a of model.actions(s)) {
        const t = model.next(s, a);
        visit(t, `next ${model.actionKind(a)}`);
        const u = model.unpack!(model.pack!(t));
        visit(u, 'unpack');
        next.push(u);
      }
    frontier = next;
  }
  return new Map([...seen].map(([k, e]) => [k, e.from]));
}

describe('hidden classes of the search states', () => {
  it('one per kind of record at syscall granularity, made by the model or unpacked', () => {
    const many = [...hiddenClasses({ procs: 2, pages: 2, maxLen: 2 }, 3)].filter(([, from]) => from.length > 1);
    expect(many).toEqual([]);
  });

  it('and at lock granularity with two threads and a walker', () => {
    const many = [...hiddenClasses({ procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1, threads: 2 }, 6)].filter(([, from]) => from.length > 1);
    expect(many).toEqual([]);
  });

  it('a kernel context keeps one class when a step sets its thread and lock point', () => {
    const model = createMmModel({ bounds: { granularity: 'lock', threads: 2 }, transitions: 'cow' });
    const fresh = makeCtx(model.initial(), mainlineKernel, 0);
    const stepping = makeCtx(model.initial(), mainlineKernel, 0);
    stepping.t = emptyThread(0, 0);
    stepping.resumeAt = 'dup_mmap_vma';
    expect(haveSameMap(fresh, stepping)).toBe(true);
  });
});

