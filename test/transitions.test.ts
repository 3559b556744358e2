// The explorer's copy-on-write transitions (models/mm/cow.ts) against the
// reference semantics (immer): explored both ways, every configuration must
// give identical levels, counts, coverage, violations and traces (issue 12).
// Also: the compact pack round-trips every state, and --check-immutability
// catches a variant that writes to its input state.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setAutoFreeze } from 'immer';
import { explore, type ExploreResult } from '../src/engine/explorer.ts';
import { replayTexts } from '../src/engine/replay.ts';
import type { Model } from '../src/engine/model.ts';
import { applyOp, createMmModel, MutatedInputError, type Bounds, type MmModel } from '../models/mm/model.ts';
import { encodeState } from '../models/mm/canon.ts';
import { packMmState, unpackMmState } from '../models/mm/pack.ts';
import { formatOp, opFromInts, opInts, parseOp, splitOps, type Op, type SyscallOp } from '../models/mm/ops.ts';
import { stateToJson } from '../src/report/json.ts';
import { NIL, type State } from '../models/mm/state.ts';
import { insert, makeCtx } from '../models/mm/ctx.ts';
import { mainlineKernel } from '../models/mm/kernel.ts';
import { walkRandom } from '../src/engine/simulate.ts';
import { BUG_CORPUS } from '../models/variants/corpus/index.ts';
import { loadModel } from '../models/variants/load.ts';
import { builtinVariants } from '../models/variants/registry.ts';

/** The model with the engine's search path forced to the reference (immer) transitions. */
function reference(m: MmModel): Model<State, Op> {
  return { ...m, forSearch: undefined };
}

/** What must agree between the two searches. */
function summary(r: ExploreResult<Op, State>) {
  return {
    outcome: r.outcome,
    generated: r.generated,
    distinct: r.distinct,
    levelSizes: r.levelSizes,
    coverage: r.coverage,
    violations: r.violations.map((v) => ({ property: v.property, details: v.details, depth: v.depth, fingerprint: v.fingerprint, trace: v.traceText })),
  };
}

interface Config {
  name: string;
  variant?: string;
  bounds: Partial<Bounds>;
  depth: number;
  from?: string;
}

function exploreBothWays(c: Config) {
  const m = createMmModel({ ...(c.variant ? { variant: c.variant } : {}), bounds: c.bounds });
  expect((m.forSearch!() as MmModel).transitions).toBe('cow');
  const run = (model: Model<State, Op>) => {
    const root = model.initial();
    const prefix = c.from ? splitOps(c.from) : [];
    const from = prefix.length > 0 ? replayTexts(model, root, prefix).states.at(-1) : undefined;
    const r = explore(model, { depth: c.depth, stopAtFirst: false, ...(from ? { from, fromPrefix: prefix.length } : {}) });
    return summary(r);
  };
  return { cow: run(m), immer: run(reference(m)) };
}

const CONFIGS: Config[] = [
  { name: 'syscall granularity', bounds: { procs: 2, pages: 3, maxLen: 2 }, depth: 4 },
  { name: 'three processes, fork-heavy', bounds: { procs: 3, pages: 2, maxLen: 1, ops: ['mmap', 'fault', 'fork', 'munmap', 'exit'] }, depth: 6 },
  { name: '--enomem 1', bounds: { procs: 2, pages: 2, maxLen: 2, enomem: 1 }, depth: 4 },
  { name: '--large-folios with pins', bounds: { procs: 2, pages: 2, maxLen: 2, largeFolios: true, ops: ['mmap', 'fault', 'fork', 'munmap', 'mremap', 'pin', 'exit'] }, depth: 4 },
  { name: 'lock granularity with a walker', bounds: { procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1 }, depth: 6 },
  { name: 'two threads in a process (per-VMA locks, queued writers)', bounds: { procs: 1, pages: 3, maxLen: 1, granularity: 'lock', walkers: 1, threads: 2, ops: ['mmap', 'fault', 'munmap', 'mremap', 'mprotect'] }, depth: 6 },
  {
    // The migrate walker (issue 17) asleep on its anon_vma reference while the fork child that mapped the folio exits.
    name: 'lock granularity, a migrate walker across an exit',
    bounds: { procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1 },
    depth: 9,
    from: 'P0 mmap 0 1; P0 fault 0 w; P0 fork; P0 step; P1 fault 0 w; W migrate P1 0',
  },
  { name: 'lock granularity, --enomem 1, no reduction', bounds: { procs: 1, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1, enomem: 1, reduce: false }, depth: 7 },
  { name: 'relocate-rfc-v2 with pins', variant: 'relocate-rfc-v2', bounds: { procs: 2, pages: 2, maxLen: 1, relocate: true, ops: ['mmap', 'fault', 'fork', 'mremap', 'pin', 'exit'] }, depth: 5 },
  { name: 'relocate-v3', variant: 'relocate-v3', bounds: { procs: 2, pages: 2, maxLen: 1, relocate: true, ops: ['mmap', 'fault', 'fork', 'mremap', 'pin', 'exit'] }, depth: 5 },
  // The relocation cut at its own lock points (the variant's steps), with a walker: its deadlocks and the undo of a pinned folio.
  { name: 'relocate-v3 at lock granularity with a walker', variant: 'relocate-v3', bounds: { procs: 1, pages: 3, maxLen: 2, relocate: true, granularity: 'lock', walkers: 1, ops: ['mmap', 'fault', 'mremap', 'pin'] }, depth: 6 },
];

// Every corpus entry, buggy and fixed, at its bounds with every property, to
// at most four levels past its prefix (so that the reference search stays
// quick; test/variants.test.ts runs the corpus to its full depth).
const CORPUS_LEVELS = 4;
/** B2's four processes from an 8-operation prefix: two levels are already ~3k states. */
const CORPUS_LEVELS_OF: Record<string, number> = { B2: 2 };
for (const e of BUG_CORPUS) {
  const prefix = e.from ? splitOps(e.from).length : 0;
  const depth = Math.min(e.depth, prefix + (CORPUS_LEVELS_OF[e.id] ?? CORPUS_LEVELS));
  for (const variant of [e.buggy, e.fixed])
    CONFIGS.push({ name: `corpus ${e.id}: ${variant}`, variant, bounds: e.bounds, depth, ...(e.from ? { from: e.from } : {}) });
}

/** Buggy corpus variants caught within CORPUS_LEVELS levels. */
const BUGGY = new Set(['b3b-clone-enomem', 'seed000-cleanup-no-reset', 'relocate-children-only', 'uv1-fork-copy-no-data', 'uv2-merge-abort-keeps-dup']);

describe('copy-on-write transitions agree with immer', () => {
  setAutoFreeze(true);
  for (const c of CONFIGS) {
    it(c.name, () => {
      const { cow, immer } = exploreBothWays(c);
      expect(cow.generated).toBeGreaterThan(0);
      expect(cow).toEqual(immer);
      // What is compared includes violations: the buggy variants are caught within these bounds.
      if (BUGGY.has(c.variant ?? '')) expect(cow.violations.length).toBeGreaterThan(0);
    });
  }
});

describe('copy-on-write transitions agree with immer on the whole state', () => {
  // Fields outside the canonical form too: the syscall's result, the
  // reference view and the contents (issue 13), along failures and SIGSEGV.
  it('result, user view and folio contents', () => {
    setAutoFreeze(false);
    const m = createMmModel({ bounds: { procs: 3, pages: 8, enomem: 2 } });
    const traces = [
      'P0 mmap 0 3; P0 fault 0 w; P0 fork; P1 fault 0 w; P0 pin 0; P0 fork enomem=1; P0 mremap 0 2 4 2 maymove,fixed,dontunmap; P1 fault 7 w',
      'P0 mmap 0 2; P0 fault 1 w enomem=3; P0 fault 1 w; P0 mprotect 1 1 r enomem=1; P0 munmap 0 1; P0 exit',
    ];
    for (const t of traces) {
      let [a, b] = [m.initial(), m.initial()];
      for (const text of splitOps(t)) {
        const op = m.parseAction(a, text);
        a = applyOp(m.kernel, a, op as SyscallOp, 'immer');
        b = applyOp(m.kernel, b, op as SyscallOp, 'cow');
        expect(b).toEqual(a);
      }
    }
  });
});

describe('copy-on-write tables past their first ids', () => {
  it('a long walk (ids in the hundreds, tables V8 keeps as dictionaries) gives the same states both ways', () => {
    setAutoFreeze(false);
    // No exit: the walk never ends, and ids keep growing.
    const m = createMmModel({ bounds: { procs: 3, pages: 3, maxLen: 2, ops: ['mmap', 'fault', 'fork', 'munmap', 'mprotect', 'mremap'] } });
    const rand = walkRandom(3, 0);
    let [a, b] = [m.initial(), m.initial()];
    for (let step = 0; step < 600; step++) {
      const ops = m.actions(a);
      if (ops.length === 0) [a, b] = [m.initial(), m.initial()];
      else {
        const op = ops[Math.floor(rand() * ops.length)] as SyscallOp;
        a = applyOp(m.kernel, a, op, 'immer');
        b = applyOp(m.kernel, b, op, 'cow');
        expect(b).toEqual(a);
      }
    }
    // The walk went far past the ids a short search uses.
    expect(a.nextId.avc).toBeGreaterThan(100);
    expect(a.nextId.vma).toBeGreaterThan(100);
  });

  it('a record stored at or above its table\'s next id is a model bug, under immer and copy-on-write', () => {
    const s = createMmModel().initial();
    const avc = (id: number) => ({ id, vma: NIL, anonVma: NIL, inTree: false, cachedStart: 0, cachedLast: 0 });
    expect(() => insert(makeCtx(structuredClone(s), mainlineKernel, 0), 'avcs', s.nextId.avc, avc(s.nextId.avc))).toThrow(/model bug: avcs record 0 stored at or above/);
    expect(() => insert(makeCtx(structuredClone(s), mainlineKernel, 0, 0, []), 'avcs', s.nextId.avc, avc(s.nextId.avc))).toThrow(/model bug/);
    const t = structuredClone(s);
    t.nextId.avc++;
    insert(makeCtx(t, mainlineKernel, 0, 0, []), 'avcs', 0, avc(0));
    expect(t.avcs[0]).toEqual(avc(0));
  });
});

describe('the compact pack', () => {
  it('round-trips every state of a small search, threads and walkers included', () => {
    setAutoFreeze(false);
    for (const bounds of [
      { procs: 2, pages: 3, maxLen: 2, enomem: 1 },
      { procs: 2, pages: 2, maxLen: 1, granularity: 'lock', walkers: 1 } as const,
      { procs: 1, pages: 3, maxLen: 1, granularity: 'lock', walkers: 1, threads: 2 } as const,
    ] satisfies Partial<Bounds>[]) {
      const m = createMmModel({ variant: 'b2-degree', bounds }).forSearch!();
      let level = [m.initial()];
      let n = 0;
      for (let d = 0; d < 5; d++) {
        const next: State[] = [];
        for (const s of level)
          for (const a of m.actions(s)) {
            const t = m.next(s, a);
            const u = unpackMmState(packMmState(t));
            expect(encodeState(u)).toEqual(encodeState(t));
            if (n % 8 === 0) {
              expect(stateToJson(u)).toEqual(stateToJson(t));
              expect(m.actions(u).map((x) => m.formatAction(u, x))).toEqual(m.actions(t).map((x) => m.formatAction(t, x)));
            }
            next.push(t);
            n++;
          }
        // A spread of each level, not its first states only.
        level = next.filter((_, i) => i % Math.ceil(next.length / 60) === 0);
      }
      expect(n).toBeGreaterThan(500);
    }
  });

  it('packs an in-flight syscall field by field: every kind and flag comes back as it was', () => {
    const texts = [
      'P1 mmap 3 2 rx close special nomerge enomem=2',
      'P0 mmap 0 1',
      'P2 fault 4 w large enomem=1',
      'P0 fault 0 r',
      'P0 fork enomem=3',
      'P1 munmap 1 2',
      'P0 mprotect 0 3 r enomem=1',
      'P0 mremap 1 1 3 1 maymove,fixed',
      'P1 mremap 0 2 4 2 maymove,fixed,dontunmap enomem=2',
      'P0 mremap 0 1 2 1 maymove,fixed,relocate',
      'P3 pin 2',
      'P0 exit',
    ];
    for (const text of texts) {
      const op = parseOp(text) as SyscallOp;
      const ints: number[] = [];
      opInts(op, (x) => ints.push(x));
      let i = 0;
      const back = opFromInts(op.proc, () => ints[i++]!);
      expect(i, text).toBe(ints.length);
      expect(back, text).toEqual(op);
      expect(formatOp(back)).toBe(formatOp(op));
    }
  });

  it('is several times smaller than v8.serialize', async () => {
    const { serialize } = await import('node:v8');
    const m = createMmModel({ bounds: { procs: 2 } });
    const s = replayTexts(m, m.initial(), splitOps('P0 mmap 0 4; P0 fault 1 w; P0 fork; P1 fault 2 w; P0 mprotect 0 1 r')).states.at(-1)!;
    expect(packMmState(s).length * 4).toBeLessThan(serialize(s).length);
  });
});

describe('--check-immutability', () => {
  it('mainline passes, with the counts of the unchecked search', () => {
    const bounds = { procs: 2, pages: 2, maxLen: 2 };
    const plain = explore(createMmModel({ bounds }), { depth: 4, stopAtFirst: false });
    const checked = explore(createMmModel({ bounds, checkImmutability: true }), { depth: 4, stopAtFirst: false });
    expect(checked.distinct).toBe(plain.distinct);
    expect(checked.generated).toBe(plain.generated);
  });

  // Every built-in variant, at both granularities, with every syscall: none
  // writes to its input state.
  for (const v of ['mainline', ...builtinVariants().map((x) => x.name)])
    it(`${v} writes only through the accessors`, () => {
      const ops = ['mmap', 'fault', 'fork', 'munmap', 'mprotect', 'mremap', 'pin', 'exit'] as const;
      for (const bounds of [
        { procs: 3, pages: 2, maxLen: 1, ops: [...ops], relocate: v.startsWith('relocate'), enomem: 1 },
        { procs: 2, pages: 2, maxLen: 1, ops: [...ops], relocate: v.startsWith('relocate'), granularity: 'lock', walkers: 1 } as const,
      ] satisfies Partial<Bounds>[]) {
        const r = explore(createMmModel({ variant: v, bounds, checkImmutability: true }), { depth: 4, stopAtFirst: false });
        expect(r.generated).toBeGreaterThan(100);
      }
    });

  it('names the function of a variant that writes to its input state', async () => {
    const loaded = await loadModel(new URL('./fixtures/mutates-input.ts', import.meta.url).pathname);
    const bounds = { procs: 1, pages: 2, maxLen: 1 };
    // Without the check the write goes unnoticed: it stores the value already there.
    const unchecked = explore(createMmModel({ name: loaded.name, kernel: loaded.kernel, bounds }), { depth: 3, stopAtFirst: false });
    expect(unchecked.violations).toEqual([]);
    const checked = createMmModel({ name: loaded.name, kernel: loaded.kernel, bounds, checkImmutability: true });
    let error: unknown;
    try {
      explore(checked, { depth: 3, stopAtFirst: false });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MutatedInputError);
    expect((error as Error).message).toMatch(/^model "mutates-input" writes to its input state in do_anonymous_page \(.*mutates-input\.ts:\d+\): Cannot assign to read only property 'hasPinned'/);
  });
});

describe('mmcheck check --check-immutability', () => {
  it('refuses a variant that writes to its input state: one line naming the function, exit 2, the run recorded as an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmcheck-immut-'));
    try {
      const bin = fileURLToPath(new URL('../bin/mmcheck.js', import.meta.url));
      const fixture = fileURLToPath(new URL('./fixtures/mutates-input.ts', import.meta.url));
      const args = ['check', '--model', fixture, '--depth', '3', '--procs', '1', '--pages', '2', '--max-len', '1', '--workers', '1', '--db', join(dir, 'r.db')];
      const plain = await runCli(bin, args);
      expect(plain.code, plain.stderr).toBe(0);
      const checked = await runCli(bin, [...args, '--check-immutability']);
      // The output goes with the code: this once exited 1 in a full run and could not be reproduced.
      expect(checked.code, `stdout: ${checked.stdout}\nstderr: ${checked.stderr}`).toBe(2);
      expect(checked.stderr.trim().split('\n')).toHaveLength(1);
      expect(checked.stderr).toMatch(/writes to its input state in do_anonymous_page \(.*mutates-input\.ts:\d+\).*recorded as error/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Run the CLI without blocking this test worker's event loop. */
function runCli(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (e, stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}
