// The operation syntax (models/mm/ops.ts, DESIGN.md §3): parseOp/formatOp
// round trips for every form, ParseError messages for malformed operations,
// and validateOp's checks against a state (through model.parseAction).
import { describe, expect, it } from 'vitest';
import { ParseError } from '../src/engine/model.ts';
import { createMmModel, validateOp } from '../models/mm/model.ts';
import { OP_KINDS, formatOp, mmapFlags, parseOp, splitOps, type Op } from '../models/mm/ops.ts';
import { VM_EXEC, VM_NOMERGE, VM_READ, VM_SPECIAL, VM_WRITE, WALKER_BASE, type State } from '../models/mm/state.ts';

const RW = VM_READ | VM_WRITE;
const NOFLAGS = { maymove: false, fixed: false, dontunmap: false, relocate: false };

/** Canonical texts (formatOp prints exactly these) with the operation each parses to. */
const CANONICAL: [string, Op][] = [
  ['P0 mmap 0 4', { kind: 'mmap', proc: 0, addr: 0, len: 4, prot: RW, close: false, special: false, nomerge: false, enomem: 0 }],
  ['P0 mmap 2 1 r', { kind: 'mmap', proc: 0, addr: 2, len: 1, prot: VM_READ, close: false, special: false, nomerge: false, enomem: 0 }],
  ['P1 mmap 3 2 rx', { kind: 'mmap', proc: 1, addr: 3, len: 2, prot: VM_READ | VM_EXEC, close: false, special: false, nomerge: false, enomem: 0 }],
  ['P0 mmap 0 1 rwx', { kind: 'mmap', proc: 0, addr: 0, len: 1, prot: RW | VM_EXEC, close: false, special: false, nomerge: false, enomem: 0 }],
  ['P0 mmap 0 4 close', { kind: 'mmap', proc: 0, addr: 0, len: 4, prot: RW, close: true, special: false, nomerge: false, enomem: 0 }],
  ['P0 mmap 0 4 special', { kind: 'mmap', proc: 0, addr: 0, len: 4, prot: RW, close: false, special: true, nomerge: false, enomem: 0 }],
  ['P0 mmap 0 4 nomerge', { kind: 'mmap', proc: 0, addr: 0, len: 4, prot: RW, close: false, special: false, nomerge: true, enomem: 0 }],
  ['P2 mmap 1 3 r close special nomerge enomem=2', { kind: 'mmap', proc: 2, addr: 1, len: 3, prot: VM_READ, close: true, special: true, nomerge: true, enomem: 2 }],
  ['P0 fault 1 w', { kind: 'fault', proc: 0, page: 1, write: true, large: false, enomem: 0 }],
  ['P0 fault 1 w large', { kind: 'fault', proc: 0, page: 1, write: true, large: true, enomem: 0 }],
  ['P3 fault 0 r enomem=1', { kind: 'fault', proc: 3, page: 0, write: false, large: false, enomem: 1 }],
  ['P0 fork', { kind: 'fork', proc: 0, enomem: 0 }],
  ['P1 fork enomem=7', { kind: 'fork', proc: 1, enomem: 7 }],
  ['P1 exit', { kind: 'exit', proc: 1, enomem: 0 }],
  ['P1 exit enomem=1', { kind: 'exit', proc: 1, enomem: 1 }],
  ['P1 munmap 1 1', { kind: 'munmap', proc: 1, addr: 1, len: 1, enomem: 0 }],
  ['P0 munmap 0 3 enomem=2', { kind: 'munmap', proc: 0, addr: 0, len: 3, enomem: 2 }],
  ['P1 mprotect 0 2 r', { kind: 'mprotect', proc: 1, addr: 0, len: 2, prot: VM_READ, enomem: 0 }],
  ['P1 mprotect 0 2 rw', { kind: 'mprotect', proc: 1, addr: 0, len: 2, prot: RW, enomem: 0 }],
  ['P1 mprotect 0 2 rx', { kind: 'mprotect', proc: 1, addr: 0, len: 2, prot: VM_READ | VM_EXEC, enomem: 0 }],
  ['P1 mprotect 4 1 rwx enomem=3', { kind: 'mprotect', proc: 1, addr: 4, len: 1, prot: RW | VM_EXEC, enomem: 3 }],
  ['P0 mremap 0 2 4 2', { kind: 'mremap', proc: 0, addr: 0, oldLen: 2, newAddr: 4, newLen: 2, flags: NOFLAGS, enomem: 0 }],
  ['P0 mremap 0 1 0 3 maymove', { kind: 'mremap', proc: 0, addr: 0, oldLen: 1, newAddr: 0, newLen: 3, flags: { ...NOFLAGS, maymove: true }, enomem: 0 }],
  ['P0 mremap 0 2 4 2 maymove,fixed', { kind: 'mremap', proc: 0, addr: 0, oldLen: 2, newAddr: 4, newLen: 2, flags: { ...NOFLAGS, maymove: true, fixed: true }, enomem: 0 }],
  [
    'P0 mremap 0 2 4 2 maymove,fixed,dontunmap enomem=4',
    { kind: 'mremap', proc: 0, addr: 0, oldLen: 2, newAddr: 4, newLen: 2, flags: { maymove: true, fixed: true, dontunmap: true, relocate: false }, enomem: 4 },
  ],
  [
    'P0 mremap 1 1 5 1 maymove,fixed,dontunmap,relocate',
    { kind: 'mremap', proc: 0, addr: 1, oldLen: 1, newAddr: 5, newLen: 1, flags: { maymove: true, fixed: true, dontunmap: true, relocate: true }, enomem: 0 },
  ],
  ['P0 pin 1', { kind: 'pin', proc: 0, page: 1, enomem: 0 }],
  ['P12 pin 0 enomem=1', { kind: 'pin', proc: 12, page: 0, enomem: 1 }],
  ['W reclaim P0 1', { kind: 'walk', walker: 'reclaim', proc: 0, page: 1, enomem: 0 }],
  ['W referenced P2 0', { kind: 'walk', walker: 'referenced', proc: 2, page: 0, enomem: 0 }],
  ['W migrate P1 3', { kind: 'walk', walker: 'migrate', proc: 1, page: 3, enomem: 0 }],
  ['P1 step', { kind: 'step', proc: 1, pc: '', enomem: 0 }],
  ['W3 step', { kind: 'step', proc: WALKER_BASE + 3, pc: '', enomem: 0 }],
];

describe('parseOp / formatOp', () => {
  it.each(CANONICAL)('%s parses and prints back identically', (text, op) => {
    expect(parseOp(text)).toEqual(op);
    expect(formatOp(op)).toBe(text);
    expect(parseOp(formatOp(op))).toEqual(op);
  });

  it('covers every syscall kind', () => {
    expect(new Set(CANONICAL.map(([, op]) => op.kind))).toEqual(new Set([...OP_KINDS, 'walk', 'step']));
  });

  it("a step prints its name as a comment, which parsing drops (stored traces replay)", () => {
    const op: Op = { kind: 'step', proc: WALKER_BASE, pc: 'try_to_unmap_one', enomem: 0 };
    expect(formatOp(op)).toBe('W0 step  # try_to_unmap_one');
    expect(parseOp(formatOp(op))).toEqual({ ...op, pc: '' });
  });

  it.each([
    // Non-canonical spellings and the canonical form they print as.
    ['  P0   mmap  0   4  ', 'P0 mmap 0 4'],
    ['P0 mmap 0 4 rw', 'P0 mmap 0 4'],
    ['P0 mmap 0 4 nomerge close r', 'P0 mmap 0 4 r close nomerge'],
    ['P0 mmap 0 4 r rx', 'P0 mmap 0 4 rx'],
    ['P0 mremap 0 2 4 2 fixed,maymove', 'P0 mremap 0 2 4 2 maymove,fixed'],
    ['P0 mremap 0 2 4 2 relocate,dontunmap,fixed,maymove', 'P0 mremap 0 2 4 2 maymove,fixed,dontunmap,relocate'],
    ['P0 fault 007 w', 'P0 fault 7 w'],
    ['P0\tfork', 'P0 fork'],
  ])('"%s" prints as "%s"', (text, canonical) => {
    expect(formatOp(parseOp(text))).toBe(canonical);
  });

  it('mmapFlags combines prot, special and nomerge', () => {
    expect(mmapFlags(parseOp('P0 mmap 0 1') as Extract<Op, { kind: 'mmap' }>)).toBe(RW);
    expect(mmapFlags(parseOp('P0 mmap 0 1 r special nomerge close') as Extract<Op, { kind: 'mmap' }>)).toBe(VM_READ | VM_SPECIAL | VM_NOMERGE);
  });

  it('splitOps splits on ";" and newlines and drops comments and blanks', () => {
    expect(splitOps('P0 mmap 0 4; P0 fault 1 w # first fault\n\n  # only a comment\nP0 fork;;P1 exit ')).toEqual([
      'P0 mmap 0 4',
      'P0 fault 1 w',
      'P0 fork',
      'P1 exit',
    ]);
  });
});

describe('ParseError for malformed operations', () => {
  const cases: [string, string][] = [
    // Unknown syscall / missing syscall / bad process.
    ['P0 frob 1', '"P0 frob 1": unknown syscall "frob" (mmap, fault, fork, munmap, mprotect, mremap, pin, exit)'],
    ['P0', '"P0": unknown syscall "" (mmap, fault, fork, munmap, mprotect, mremap, pin, exit)'],
    ['fork', '"fork": an operation starts with a process (or a thread of one), like P0 or P0.1'],
    ['X0 fork', '"X0 fork": an operation starts with a process (or a thread of one), like P0 or P0.1'],
    ['p0 fork', '"p0 fork": an operation starts with a process (or a thread of one), like P0 or P0.1'],
    ['P fork', '"P fork": an operation starts with a process (or a thread of one), like P0 or P0.1'],
    ['P0.4 fork', '"P0.4 fork": a process has threads 0 to 3'],
    ['W fork', '"W fork": a walker is "W <kind> P<i> <page>", kind one of reclaim, referenced, migrate'],
    ['W reclaim 1', '"W reclaim 1": a walker starts on the folio mapped at a process\'s page, like P0 1'],
    ['W reclaim P0 x', '"W reclaim P0 x": page must be a non-negative integer, got "x"'],
    ['W0 fork', '"W0 fork": a walker thread only takes "step", like W0 step'],
    ['P0 step 1', '"P0 step 1": unexpected "1"'],
    // Bad numbers.
    ['P0 mmap x 4', '"P0 mmap x 4": address must be a non-negative integer, got "x"'],
    ['P0 mmap -1 4', '"P0 mmap -1 4": address must be a non-negative integer, got "-1"'],
    ['P0 mmap 0 1.5', '"P0 mmap 0 1.5": length must be a non-negative integer, got "1.5"'],
    ['P0 mmap 0 0', '"P0 mmap 0 0": length must be at least 1'],
    ['P0 munmap 0 0', '"P0 munmap 0 0": length must be at least 1'],
    ['P0 mprotect 0 0 r', '"P0 mprotect 0 0 r": length must be at least 1'],
    ['P0 fault a w', '"P0 fault a w": page must be a non-negative integer, got "a"'],
    ['P0 pin 0x1', '"P0 pin 0x1": page must be a non-negative integer, got "0x1"'],
    ['P0 mremap 0 0 2 1', '"P0 mremap 0 0 2 1": lengths must be at least 1'],
    ['P0 mremap 0 1 2 0', '"P0 mremap 0 1 2 0": lengths must be at least 1'],
    ['P0 mremap 0 1 z 1', '"P0 mremap 0 1 z 1": new address must be a non-negative integer, got "z"'],
    ['P0 fork enomem=0', '"P0 fork enomem=0": enomem=K counts allocations from 1'],
    ['P0 fork enomem=x', '"P0 fork enomem=x": enomem allocation number must be a non-negative integer, got "x"'],
    ['P0 fork enomem=', '"P0 fork enomem=": enomem allocation number must be a non-negative integer, got ""'],
    // Unknown flags and attributes.
    ['P0 mremap 0 1 2 1 maymove,bogus', '"P0 mremap 0 1 2 1 maymove,bogus": unknown mremap flag "bogus" (maymove, fixed, dontunmap, relocate)'],
    ['P0 mmap 0 4 shared', '"P0 mmap 0 4 shared": unknown mmap attribute "shared" (prot, close, special, nomerge)'],
    ['P0 mprotect 0 2 wx', '"P0 mprotect 0 2 wx": prot must be r, rw, rx or rwx, got "wx"'],
    ['P0 fault 1 x', '"P0 fault 1 x": fault takes w or r after the page'],
    // Missing arguments.
    ['P0 mmap', '"P0 mmap": missing address'],
    ['P0 mmap 0', '"P0 mmap 0": missing length'],
    ['P0 munmap 2', '"P0 munmap 2": missing length'],
    ['P0 mprotect 0 2', '"P0 mprotect 0 2": missing prot (r, rw, rx or rwx)'],
    ['P0 fault', '"P0 fault": missing page'],
    ['P0 fault 1', '"P0 fault 1": fault takes w or r after the page'],
    ['P0 pin', '"P0 pin": missing page'],
    ['P0 mremap 0 1 2', '"P0 mremap 0 1 2": missing new length'],
    ['P0 mremap', '"P0 mremap": missing old address'],
    // Trailing junk.
    ['P0 fork now', '"P0 fork now": unexpected "now"'],
    ['P0 exit 1 2', '"P0 exit 1 2": unexpected "1 2"'],
    ['P0 fault 1 w w', '"P0 fault 1 w w": unexpected "w"'],
    ['P0 munmap 0 1 r', '"P0 munmap 0 1 r": unexpected "r"'],
    ['P0 pin 1 2', '"P0 pin 1 2": unexpected "2"'],
    ['P0 mremap 0 1 2 1 maymove extra', '"P0 mremap 0 1 2 1 maymove extra": unexpected "extra"'],
  ];

  it.each(cases)('%s', (text, message) => {
    let err: unknown;
    try {
      parseOp(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParseError);
    expect((err as ParseError).name).toBe('ParseError');
    expect((err as ParseError).message).toBe(message);
  });
});

describe('validateOp (model.parseAction) against a state', () => {
  const model = createMmModel({ bounds: { procs: 2, pages: 6, maxLen: 2 } });
  const apply = (s: State, texts: string[]) => texts.reduce((acc, t) => model.next(acc, model.parseAction(acc, t)), s);
  const s0 = model.initial();
  const s1 = apply(s0, ['P0 mmap 1 2']);

  const rejects = (s: State, text: string, message: string) => {
    expect(() => model.parseAction(s, text)).toThrow(ParseError);
    expect(() => model.parseAction(s, text)).toThrow(message);
    // validateOp gives the same verdict when called directly.
    expect(() => validateOp(s, model.bounds, parseOp(text), text)).toThrow(message);
  };

  it('accepts valid operations', () => {
    expect(model.parseAction(s1, 'P0 mmap 3 3')).toMatchObject({ kind: 'mmap', addr: 3, len: 3 });
    expect(model.parseAction(s1, 'P0 fault 5 w')).toMatchObject({ kind: 'fault', page: 5 });
    expect(model.parseAction(s1, 'P0 munmap 0 6')).toMatchObject({ kind: 'munmap' });
    expect(model.parseAction(s1, 'P0 mremap 1 2 4 2 maymove,fixed')).toMatchObject({ kind: 'mremap' });
    expect(model.parseAction(s1, 'P0 fork')).toMatchObject({ kind: 'fork' });
    expect(model.parseAction(s1, 'P0 exit')).toMatchObject({ kind: 'exit' });
  });

  it('rejects a nonexistent process', () => {
    rejects(s1, 'P1 fork', '"P1 fork": process P1 does not exist');
    rejects(s1, 'P1 mmap 0 1', '"P1 mmap 0 1": process P1 does not exist');
    rejects(apply(s1, ['P0 exit']), 'P0 fault 1 w', '"P0 fault 1 w": process P0 does not exist');
  });

  it('rejects ranges outside the address space', () => {
    rejects(s1, 'P0 mmap 5 2', '"P0 mmap 5 2": [5,7) lies outside the 6-page address space (--pages)');
    rejects(s1, 'P0 fault 6 w', '"P0 fault 6 w": [6,7) lies outside the 6-page address space (--pages)');
    rejects(s1, 'P0 pin 9', '"P0 pin 9": [9,10) lies outside the 6-page address space (--pages)');
    rejects(s1, 'P0 munmap 4 3', '"P0 munmap 4 3": [4,7) lies outside the 6-page address space (--pages)');
    rejects(s1, 'P0 mprotect 0 7 r', '"P0 mprotect 0 7 r": [0,7) lies outside the 6-page address space (--pages)');
    rejects(s1, 'P0 mremap 5 2 0 2 maymove,fixed', '"P0 mremap 5 2 0 2 maymove,fixed": [5,7) lies outside the 6-page address space (--pages)');
    rejects(s1, 'P0 mremap 1 2 5 2 maymove,fixed', '"P0 mremap 1 2 5 2 maymove,fixed": [5,7) lies outside the 6-page address space (--pages)');
  });

  it('rejects mmap over a mapping (MAP_FIXED over a mapping is not modelled)', () => {
    rejects(s1, 'P0 mmap 0 2', '"P0 mmap 0 2": [0,2) is not free (MAP_FIXED over a mapping is not modelled)');
    rejects(s1, 'P0 mmap 2 1', '"P0 mmap 2 1": [2,3) is not free (MAP_FIXED over a mapping is not modelled)');
    expect(model.parseAction(s1, 'P0 mmap 0 1')).toMatchObject({ addr: 0, len: 1 });
  });

  it('rejects a fork beyond the process bound', () => {
    const s2 = apply(s1, ['P0 fork']);
    // The wording of this message is not pinned: it names the operation and the bound.
    rejects(s2, 'P0 fork', '"P0 fork": ');
    rejects(s2, 'P1 fork', '(--procs 2)');
    // Once a process exits its slot is free again.
    expect(model.parseAction(apply(s2, ['P0 exit']), 'P1 fork')).toMatchObject({ kind: 'fork', proc: 1 });
  });

  it('rejects an ENOMEM injection without budget, accepts it with budget', () => {
    rejects(s1, 'P0 fork enomem=1', '"P0 fork enomem=1": no ENOMEM injection left (--enomem)');
    const withBudget = createMmModel({ bounds: { procs: 2, pages: 6, maxLen: 2, enomem: 1 } });
    const t = withBudget.initial();
    expect(withBudget.parseAction(t, 'P0 mmap 0 2 enomem=1')).toMatchObject({ enomem: 1 });
    // The failed allocation uses up the budget.
    const t1 = withBudget.next(t, withBudget.parseAction(t, 'P0 mmap 0 2 enomem=1'));
    expect(t1.budgets.enomem).toBe(0);
    expect(() => withBudget.parseAction(t1, 'P0 mmap 0 2 enomem=1')).toThrow('no ENOMEM injection left');
  });
});
