// Issue 13: memory contents and the reference model of what userspace reads
// (user-view), the transition properties failure-atomic and range-exact,
// SIGSEGV in the step result, unmap_vmas clipped to its range, and the
// engine's transition checks (every generated transition, pool = one thread).
import { describe, expect, it } from 'vitest';
import { produce } from 'immer';
import { checkProperties, checkTransition, type Model } from '../src/engine/model.ts';
import { explore, replayTexts } from '../src/engine/explorer.ts';
import { exploreParallel } from '../src/engine/parallel.ts';
import { createMmModel, type Bounds, type MmModel } from '../models/mm/model.ts';
import { encodeState } from '../models/mm/canon.ts';
import { makeCtx } from '../models/mm/ctx.ts';
import { mainlineKernel } from '../models/mm/kernel.ts';
import { ScenarioBuilder } from '../models/mm/scenario.ts';
import { splitOps, type Op } from '../models/mm/ops.ts';
import { SIGSEGV, USER_ZERO, type State } from '../models/mm/state.ts';
import { ENOMEM } from '../models/mm/rmap.ts';
import { ALL_PROPERTIES } from '../properties/index.ts';
import { failureAtomic, rangeExact } from '../properties/transitions.ts';
import { userView } from '../properties/user.ts';
import { BUG_CORPUS } from '../models/variants/corpus/index.ts';
import { renderState } from '../src/report/text.ts';
import { stateToJson } from '../src/report/json.ts';
import { traceDot } from '../src/report/dot.ts';
import { toyModel } from './toy-model.ts';
import { runCli } from './run-cli.ts';

const model = (bounds: Partial<Bounds> = {}, variant?: string): MmModel => createMmModel({ bounds: { pages: 8, enomem: 1, ...bounds }, ...(variant ? { variant } : {}) });

/** Replay a scenario; the states and actions. */
function run(ops: string, m: MmModel = model()) {
  return replayTexts(m as Model<State, Op>, m.initial(), splitOps(ops));
}
const last = (ops: string, m?: MmModel): State => run(ops, m).states.at(-1)!;
const ids = (vs: { property: string }[]): string[] => vs.map((v) => v.property);

describe('user-view', () => {
  it('holds along writes, fork, COW, mremap moves, DONTUNMAP and munmap', () => {
    const { states } = run('P0 mmap 0 3; P0 fault 0 w; P0 fault 1 r; P0 fork; P1 fault 0 w; P0 mremap 0 2 4 2 maymove,fixed; P1 mremap 0 1 6 1 maymove,fixed,dontunmap; P1 munmap 1 1; P1 exit');
    for (const s of states) expect(userView.check(s)).toEqual([]);
    // The parent's write moved with its page; the child's own write is at its new place, the source left empty.
    const s = states[7]!;
    expect(s.mms[0]!.user.slice(4, 6)).toEqual([1, USER_ZERO]);
    expect(s.mms[1]!.user[6]).toBe(2);
    expect(s.mms[1]!.user[0]).toBe(USER_ZERO);
    expect(renderState(s)).toMatch(/^contents .*P0:4=v1/m);
    expect(stateToJson(s).folios.map((f) => f.data)).toContainEqual(['v2']);
  });

  it('fails where a page reads another content than written, or is mapped where it was unmapped', () => {
    const b = new ScenarioBuilder();
    const p0 = b.mm();
    const r = b.anonVma();
    const v = b.vma(p0, { start: 0, end: 2 });
    b.link(v, r);
    b.setAnon(v, r);
    b.pte(p0, 0, b.folio({ anonVma: r, index: 0, exclusive: true, data: [3] }));
    expect(userView.check(b.fillCounters().build())).toEqual([]);
    b.user(p0, 0, 4).user(p0, 1, undefined);
    expect(userView.check(b.build())).toEqual(['P0 page 0: expected v4, reads v3', 'P0 page 1: expected unmapped, reads zeros']);
  });

  it('names the page and both contents in run and replay output', async () => {
    const r = await runCli(['run', '--model', 'uv1-fork-copy-no-data', 'P0 mmap 0 1; P0 fault 0 w; P0 pin 0; P0 fork']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('user-view: P1 page 0: expected v1, reads zeros');
  });

  it('pictures mark the page red with what it should read and what it reads', () => {
    const m = model({ procs: 2, ops: ['mmap', 'fault', 'pin', 'fork'] }, 'uv1-fork-copy-no-data');
    const texts = splitOps('P0 mmap 0 1; P0 fault 0 w; P0 pin 0; P0 fork');
    const { states } = run(texts.join(';'), m);
    const vs = checkProperties(m, states.at(-1)!).filter((v) => v.property === 'user-view');
    const dot = traceDot(states.map((state, i) => ({ text: i === 0 ? '' : texts[i - 1]!, state })), vs).at(-1)!;
    expect(dot).toContain('VIOLATED user-view: P1 page 0: expected v1, reads zeros');
    expect(dot).toMatch(/PORT="p0" BGCOLOR="[^"]+"><B>F\d+ w<BR\/><FONT POINT-SIZE="8">expected v1, reads zeros<\/FONT><\/B>/);
    // The parent's page shows its content.
    expect(dot).toMatch(/<TD PORT="p0">F\d+ w v1<\/TD>/);
  });

  it('content ids are names: the order of writes does not matter, who shares a content does', () => {
    const m = model({ procs: 2 });
    expect(encodeState(last('P0 mmap 0 2; P0 fault 0 w; P0 fault 1 w', m))).toEqual(encodeState(last('P0 mmap 0 2; P0 fault 1 w; P0 fault 0 w', m)));
    // After fork both read v1; after the child's write they differ: two states, also in the encoding.
    const shared = last('P0 mmap 0 1; P0 fault 0 w; P0 fork', m);
    const apart = last('P0 mmap 0 1; P0 fault 0 w; P0 fork; P1 fault 0 w', m);
    expect(encodeState(shared)).not.toEqual(encodeState(apart));
    // A broken copy (zeros where the parent's content should be) encodes differently from the right one.
    const broken = produce(shared, (d) => {
      d.mms[1]!.user = [7];
    });
    expect(encodeState(broken)).not.toEqual(encodeState(shared));
  });
});

describe('SIGSEGV and unmap_vmas', () => {
  it('a fault outside every VMA, or a write to a read-only one, is SIGSEGV in the state and the step', async () => {
    const m = model();
    for (const ops of ['P0 mmap 0 1; P0 fault 5 w', 'P0 mmap 0 1 r; P0 fault 0 w']) {
      const { states } = run(ops, m);
      const s = states.at(-1)!;
      expect(s.result).toEqual({ proc: 0, ret: SIGSEGV });
      expect(encodeState(s)).toEqual(encodeState(states[1]!));
      expect(checkTransition(m, states[1]!, run(ops, m).actions[1]!, s)).toEqual([]);
    }
    const r = await runCli(['run', 'P0 mmap 0 1; P0 fault 5 w']);
    expect(r.stdout).toContain('step 2: P0 fault 5 w -> SIGSEGV');
    expect(r.stdout).toMatch(/^ {2}result P0 SIGSEGV$/m);
  });

  it('unmap_vmas zaps only [start, end) of each VMA (unmap_single_vma clips)', () => {
    const s = last('P0 mmap 0 4; P0 fault 1 w; P0 fault 3 w');
    const v = s.mms[0]!.vmas[0]!;
    const after = produce(s, (d) => {
      mainlineKernel.unmap_vmas(makeCtx(d, mainlineKernel, 0), [v], 0, 2);
    });
    expect(after.mms[0]!.ptes[1]).toBeUndefined();
    expect(after.mms[0]!.ptes[3]).toBeDefined();
  });
});

describe('failure-atomic', () => {
  it('holds for failures mainline makes: a fault whose folio allocation fails keeps its anon_vma, nothing else', () => {
    const m = model();
    const { states, actions } = run('P0 mmap 0 2; P0 fault 0 w enomem=3', m);
    expect(states[2]!.result).toEqual({ proc: 0, ret: ENOMEM });
    expect(states[2]!.vmas[0]!.anonVma).not.toBe(-1);
    expect(failureAtomic.checkTransition!(states[1]!, actions[1]!, states[2]!)).toEqual([]);
  });

  it('fails when a failed syscall left a link, a page or a process changed', () => {
    const m = model();
    const { states, actions } = run('P0 mmap 0 1; P0 mmap 2 2; P0 fault 2 w; P0 mprotect 2 1 r enomem=1', m);
    const [before, after] = [states[3]!, states[4]!];
    expect(after.result?.ret).toBe(ENOMEM);
    expect(failureAtomic.checkTransition!(before, actions[3]!, after)).toEqual([]);
    // Hand-made: the untouched VMA [0,1) kept a link to A0 after the failure.
    const linked = produce(after, (d) => {
      const v = d.vmas[d.mms[0]!.vmas[0]!]!;
      v.anonVma = d.vmas[d.mms[0]!.vmas[1]!]!.anonVma;
    });
    expect(failureAtomic.checkTransition!(before, actions[3]!, linked)).toEqual([
      'P0 mprotect 2 1 r enomem=1 failed (-ENOMEM) but changed P0 page 0: anon_vma A-1 chain [] -> A0 chain []',
    ]);
    const unmapped = produce(after, (d) => {
      d.mms[0]!.vmas = [d.mms[0]!.vmas[1]!];
    });
    expect(failureAtomic.checkTransition!(before, actions[3]!, unmapped)[0]).toContain('page 0: was mapped, is unmapped');
    const forked = last('P0 mmap 0 1; P0 fault 0 w; P0 fork', m);
    const a = run('P0 mmap 0 1; P0 fault 0 w; P0 fork enomem=1', m);
    expect(failureAtomic.checkTransition!(a.states[2]!, a.actions[2]!, { ...forked, result: { proc: 0, ret: ENOMEM } })[0]).toContain('but P1 appeared');
  });

  it('finds UV2 (a merge abort keeping the duplicate), which no single-state property sees', () => {
    const e = BUG_CORPUS.find((x) => x.id === 'UV2')!;
    const m = createMmModel({ variant: e.buggy, bounds: e.bounds });
    const r = explore(m, { depth: e.depth, stopAtFirst: false });
    expect(ids(r.violations)).toEqual(['failure-atomic']);
    expect(r.violations[0]!.traceText.at(-1)).toMatch(/mprotect .* enomem=/);
  });
});

describe('range-exact', () => {
  it('holds for munmap, mprotect and mremap that keep to their ranges', () => {
    const { states, actions } = run('P0 mmap 0 4; P0 fault 0 w; P0 fault 3 w; P0 munmap 1 1; P0 mprotect 2 1 r; P0 mremap 3 1 6 1 maymove,fixed');
    for (let i = 3; i < actions.length; i++) expect(rangeExact.checkTransition!(states[i]!, actions[i]!, states[i + 1]!)).toEqual([]);
  });

  it('fails when a munmap unmaps, or an mprotect reprotects, a page outside its range', () => {
    const m = model();
    const { states, actions } = run('P0 mmap 0 2; P0 fault 1 w; P0 munmap 0 1', m);
    const wider = last('P0 mmap 0 2; P0 fault 1 w; P0 munmap 0 2', m);
    expect(rangeExact.checkTransition!(states[2]!, actions[2]!, { ...wider, result: { proc: 0, ret: 0 } })).toEqual([
      'P0 munmap 0 1 (0) changed P0 page 1 outside its range: was mapped, is unmapped',
    ]);
    const p = run('P0 mmap 0 2; P0 mprotect 0 1 r', m);
    const whole = last('P0 mmap 0 2; P0 mprotect 0 2 r', m);
    expect(rangeExact.checkTransition!(p.states[1]!, p.actions[1]!, whole)[0]).toContain('page 1 outside its range: prot rw -> r');
  });
});

describe('corpus UV1/UV2: only the new properties catch them', () => {
  const NEW = new Set(['user-view', 'failure-atomic', 'range-exact']);
  for (const id of ['UV1', 'UV2']) {
    it(`${id}: every other property holds at its bounds`, () => {
      const e = BUG_CORPUS.find((x) => x.id === id)!;
      const m = createMmModel({ variant: e.buggy, bounds: e.bounds, properties: ALL_PROPERTIES.filter((p) => !NEW.has(p.id)) });
      expect(explore(m, { depth: e.depth, stopAtFirst: false }).violations.map((v) => v.property)).toEqual([]);
    });
  }
});

describe('transition properties in the engine', () => {
  it('are checked on transitions to states already visited, with the same trace from the pool', async () => {
    const m = toyModel({ max: 4, transition: true, properties: false });
    const one = explore(m, { depth: 6 });
    expect(one.violations.map((v) => [v.property, v.depth, v.traceText.at(-1)])).toEqual([['no-swap-1-2', 4, 'swap']]);
    const spec = { module: new URL('./toy-model.ts', import.meta.url).href, export: 'toyModel', args: { max: 4, transition: true, properties: false } };
    const pool = await exploreParallel(m, { depth: 6, workers: 2, spec });
    expect(pool.violations.map((v) => v.traceText)).toEqual(one.violations.map((v) => v.traceText));
    expect(pool.generated).toBe(one.generated);
    // Without the transition check nothing is violated: the swap's successor is never new.
    expect(checkProperties(m, { a: 2, b: 1 })).toEqual([]);
  });

  it('are listed by mmcheck properties', async () => {
    const r = await runCli(['properties']);
    for (const id of ['user-view', 'failure-atomic', 'range-exact']) expect(r.stdout).toContain(id);
  });
});

describe('user-view with reclaim inside an mremap move (lock granularity)', () => {
  it('a page reclaimed at the destination after its PTE moved is swapped at the source the reference still holds', () => {
    // Every reachable state: the move's PTEs go first, the reference moves when mremap returns.
    const m = createMmModel({
      bounds: { granularity: 'lock', walkers: 1, procs: 1, pages: 2, maxLen: 1, ops: ['mmap', 'fault', 'munmap', 'mremap'] },
      properties: [userView],
    });
    const r = explore(m, { depth: 30 });
    expect(r.outcome).toBe('complete');
    expect(r.violations).toEqual([]);
  });
});
