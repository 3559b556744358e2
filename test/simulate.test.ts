// `mmcheck simulate` and `mmcheck shrink`: walks reproducible from the seed
// whatever the number of workers; the shrinker takes a planted long trace
// to a known minimal one; a corpus bug found from the empty state and
// stored shrunk; bad input refused in one line with nothing written.
// Untimed, small bounds; the command line is spawned asynchronously.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { setAutoFreeze } from 'immer';
import { runWalks, simulate, walkRandom, type SimulateResult } from '../src/engine/simulate.ts';
import { searchModel, type Model } from '../src/engine/model.ts';
import type { State } from '../models/mm/state.ts';
import type { Op } from '../models/mm/ops.ts';
import { shrinkTrace, testTrace } from '../src/engine/shrink.ts';
import { explore } from '../src/engine/explorer.ts';
import { buildMmModel, mmModelSpec, type MmSpec } from '../src/cli/model-spec.ts';
import { mmSwarm, mmSwarmSpec, mmTraceSize, simplifyMmTrace, traceBounds } from '../src/cli/mm-search.ts';
import { openStore } from '../src/store/db.ts';

setAutoFreeze(false);
const tmp = mkdtempSync(join(tmpdir(), 'mmcheck-sim-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const BIN = resolve(import.meta.dirname, '..', 'bin', 'mmcheck.js');

function mmcheck(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { cwd: tmp, timeout: 110_000, env: { ...process.env, MMCHECK_DEBUG: '' } }, (e, stdout, stderr) =>
      done({ code: e ? ((e as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

/** What must not depend on the number of workers. */
const summary = (r: SimulateResult) => ({ outcome: r.outcome, walks: r.walks, states: r.states, hits: r.hits });

// B3b: counters-exact breaks after mmap, fault and an mremap whose clone fails.
const B3B: MmSpec = { variant: 'b3b-clone-enomem', bounds: { procs: 1, pages: 2, maxLen: 1, enomem: 1 }, only: ['counters-exact'] };
const B3B_MINIMAL = ['P0 mmap 0 1', 'P0 fault 0 w', 'P0 mremap 0 1 1 1 maymove,fixed enomem=2'];

describe('simulate: reproducible from the seed', () => {
  it('the PRNG of a walk depends on (seed, walk) only', () => {
    const a = walkRandom(7, 3);
    const b = walkRandom(7, 3);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(walkRandom(7, 4)()).not.toBe(xs[0]);
    expect(walkRandom(8, 3)()).not.toBe(xs[0]);
  });

  it('stopping at the first violation: the same walks, counts and violation for 1 and 2 workers and in this thread', async () => {
    const planted: MmSpec = { variant: resolve(import.meta.dirname, 'fixtures', 'planted-index.ts'), bounds: { procs: 2, pages: 3, maxLen: 2 }, only: ['rmap-coverage'] };
    // B3b with uniform walks; the planted index bug with swarm walks.
    for (const [spec, swarm] of [[B3B, false], [planted, true]] as const) {
      const model = await buildMmModel(spec);
      const opts = { seed: 11, depth: 12, swarm, stopAtFirst: true, walks: 5000, batch: 3 };
      const base = { model: mmModelSpec(spec), fromTexts: [], ...(swarm ? { swarm: mmSwarmSpec(model.bounds) } : {}) };
      const one = await simulate({ ...opts, workers: 1, worker: base });
      const two = await simulate({ ...opts, workers: 2, worker: base });
      expect(one.outcome, `swarm ${swarm}`).toBe('violation');
      expect(one.hits[0]!.walk, `swarm ${swarm}`).toBeGreaterThan(3);
      expect(summary(two), `swarm ${swarm}`).toEqual(summary(one));
      // The same walks run in this thread, one batch: the lowest violating walk and its counts.
      const here = runWalks({ model, root: model.initial(), swarm: mmSwarm(model.bounds) }, { first: 0, count: 5000, seed: 11, depth: 12, swarm, stopAtFirst: true });
      expect(here.hits[0]!.walk).toBe(one.hits[0]!.walk);
      expect(here.hits[0]!.trace).toEqual(one.hits[0]!.trace);
      expect(here.steps.reduce((x, y) => x + y, 0)).toBe(one.states);
      expect(one.walks).toBe(one.hits[0]!.walk + 1);
      // The trace replays to the violation.
      const property = one.hits[0]!.property;
      expect(testTrace(model, model.initial(), property, one.hits[0]!.trace)?.trace).toEqual(one.hits[0]!.trace);
    }
  });

  it("a swarm walk run on its configuration's narrower model takes the actions it takes on the whole model, filtered", async () => {
    for (const bounds of [{ procs: 3, pages: 3, maxLen: 2, enomem: 1 }, { granularity: 'lock' as const, procs: 2, pages: 3, maxLen: 1, threads: 2 }]) {
      const model = await buildMmModel({ variant: 'mainline', bounds });
      const task = { first: 0, count: 300, seed: 3, depth: 15, swarm: true, stopAtFirst: false };
      const whole = runWalks({ model, root: model.initial(), swarm: mmSwarm(model.bounds) }, task);
      const narrow = runWalks({ model, root: model.initial(), swarm: mmSwarm(model.bounds, true, model) }, task);
      expect(narrow.steps).toEqual(whole.steps);
      expect(narrow.steps.reduce((x, y) => x + y, 0)).toBeGreaterThan(1000);
      expect(narrow.hits).toEqual(whole.hits);
    }
  });

  it('at lock granularity a walk draws among candidates and keeps one that runs: tryNext agrees with actions on every draw', async () => {
    const model = await buildMmModel({ variant: 'mainline', bounds: { granularity: 'lock', procs: 2, pages: 3, maxLen: 1, threads: 2, walkers: 1 } });
    const inner = searchModel(model);
    let ran = 0;
    let blocked = 0;
    const disagree: string[] = [];
    const checked: Model<State, Op> = {
      ...inner,
      tryNext(s, a) {
        const t = inner.tryNext!(s, a);
        const enabled = inner.actions(s).some((b) => inner.formatAction(s, b) === inner.formatAction(s, a));
        if (enabled !== (t !== undefined)) disagree.push(inner.formatAction(s, a));
        if (t === undefined) blocked++;
        else ran++;
        return t;
      },
    };
    const r = runWalks({ model: { ...model, forSearch: () => checked }, root: model.initial(), swarm: mmSwarm(model.bounds, true, model) }, { first: 0, count: 400, seed: 7, depth: 30, swarm: false, stopAtFirst: false });
    expect(disagree).toEqual([]);
    expect(ran).toBe(r.steps.reduce((x, y) => x + y, 0));
    // Some draws found their action blocked (a lock held) and drew again.
    expect(blocked).toBeGreaterThan(0);
  });

  it("a swarm step draws the kind first: each kind gets its share of the steps whatever its number of actions, and a kind with none is passed over", () => {
    // Kind 'one' offers 1 action, 'many' 9, 'none' never any; the state counts the steps.
    type Act = { kind: 'one' | 'many' | 'none'; n: number };
    const taken = { one: 0, many: 0, none: 0 };
    const acts = (kind?: string): Act[] => [
      ...(kind === undefined || kind === 'one' ? [{ kind: 'one' as const, n: 0 }] : []),
      ...(kind === undefined || kind === 'many' ? Array.from({ length: 9 }, (_, n) => ({ kind: 'many' as const, n })) : []),
    ];
    const plain: Model<number, Act> = {
      name: 'kinds',
      initial: () => 0,
      actions: () => acts(),
      next: (s, a) => (taken[a.kind]++, s + 1),
      encode: (s) => Int32Array.of(s),
      formatAction: (_s, a) => `${a.kind} ${a.n}`,
      parseAction: () => {
        throw new Error('unused');
      },
      actionKind: (a) => a.kind,
      isQuiescent: () => true,
      isFinal: () => false,
      properties: [],
      actionKinds: ['one', 'many', 'none'],
    };
    // The same actions listed by kind (Model.candidates), as the mm model lists them.
    const listed: Model<number, Act> = { ...plain, candidates: (_s, kind) => acts(kind), tryNext: plain.next };
    const kinds = [
      { kind: 'one', share: 1 },
      { kind: 'many', share: 1 },
      { kind: 'none', share: 2 },
    ];
    const task = { first: 0, count: 200, seed: 1, depth: 20, swarm: true, stopAtFirst: false };
    for (const model of [plain, listed]) {
      for (const k of Object.keys(taken) as (keyof typeof taken)[]) taken[k] = 0;
      const r = runWalks({ model, root: 0, swarm: () => ({ describe: () => 'kinds', allow: () => true, kinds }) }, task);
      // No step ended a walk early: 'none' was passed over.
      expect(r.steps).toEqual(new Array(200).fill(20));
      // Half the steps each (4,000 in all; a uniform draw would give 'one' a tenth).
      expect(taken.one + taken.many).toBe(4000);
      expect(taken.one).toBeGreaterThan(1800);
      expect(taken.one).toBeLessThan(2200);
    }
    // Without shares, uniform among the actions.
    for (const k of Object.keys(taken) as (keyof typeof taken)[]) taken[k] = 0;
    runWalks({ model: listed, root: 0, swarm: () => ({ describe: () => 'uniform', allow: () => true }) }, task);
    expect(taken.one).toBeGreaterThan(250);
    expect(taken.one).toBeLessThan(550);
  });

  it('--continue: per property, the violating walk of lowest index, for 1 and 2 workers', async () => {
    const spec: MmSpec = { variant: resolve(import.meta.dirname, 'fixtures', 'planted-index.ts'), bounds: { procs: 2, pages: 2, maxLen: 2 } };
    const model = await buildMmModel(spec);
    const opts = { seed: 5, depth: 10, swarm: true, stopAtFirst: false, walks: 200, batch: 9 };
    const worker = { model: mmModelSpec(spec), fromTexts: [], swarm: mmSwarmSpec(model.bounds) };
    const one = await simulate({ ...opts, workers: 1, worker });
    const two = await simulate({ ...opts, workers: 2, worker });
    expect(one.walks).toBe(200);
    expect(one.hits.length).toBeGreaterThan(0);
    expect(new Set(one.hits.map((h) => h.property)).size).toBe(one.hits.length);
    expect(summary(two)).toEqual(summary(one));
  });
});

describe('simulate: milestones', () => {
  // The combination lock of test/toy-model.ts: 12 zeros in a row open it, a
  // walk from the start state does so about once in 10^7 positions; after
  // 6 zeros (half-open, a milestone) once in 4,096.
  const lock = { model: { module: new URL('./toy-model.ts', import.meta.url).href, export: 'lockModel', args: { digits: 12 } }, fromTexts: [] };
  const opts = { seed: 5, depth: 30, swarm: false, stopAtFirst: true, walks: 20_000, batch: 32, epochWalks: 256 };

  it('walks from the milestones reach what walks from the start do not, the same for 1 and 2 workers', async () => {
    const one = await simulate({ ...opts, workers: 1, worker: lock, targets: ['opened'] });
    const two = await simulate({ ...opts, workers: 2, worker: lock, targets: ['opened'] });
    expect(one.outcome).toBe('violation');
    expect(one.hits.map((h) => h.property)).toEqual(['opened']);
    expect(one.milestones).toBeGreaterThan(0);
    expect({ ...summary(two), milestones: two.milestones }).toEqual({ ...summary(one), milestones: one.milestones });
    // The trace runs from the start state, through the milestone, to the opened lock.
    const trace = one.hits[0]!.trace;
    expect(trace.length).toBeGreaterThanOrEqual(12);
    expect(trace.slice(-12)).toEqual(Array.from({ length: 12 }, () => 'digit 0'));
    // Without milestones the same budget finds nothing.
    const plain = await simulate({ ...opts, workers: 2, worker: lock, targets: ['opened', 'half-open'] });
    expect(plain.outcome).toBe('violation');
    expect(plain.hits.map((h) => h.property)).toEqual(['half-open']);
    const whole = await simulate({ ...opts, stopAtFirst: false, workers: 2, worker: lock, targets: ['opened', 'half-open'] });
    expect(whole.hits.map((h) => h.property)).toEqual(['half-open']);
    expect(whole.milestones).toBe(0);
  });

  it('a walk reports only the targets, and no walk starts from a milestone before the epoch after it', async () => {
    const { lockModel } = await import('./toy-model.ts');
    const model = lockModel({ digits: 12 });
    const ctx = { model, root: model.initial() };
    // One epoch's walks from the start: half-open ends walks as milestones, never as a violation.
    const first = runWalks(ctx, { first: 0, count: 256, seed: 5, depth: 30, swarm: false, stopAtFirst: true, targets: ['opened'] });
    expect(first.hits).toEqual([]);
    expect(first.milestones!.length).toBeGreaterThan(0);
    for (const m of first.milestones!) expect(m.known).toEqual(['half-open']);
    // Given a milestone one digit short, about half the walks start there
    // (the others from the start state, which never open the lock): a
    // quarter of those open it at once, and report the whole trace.
    const near = { trace: Array.from({ length: 11 }, () => 'digit 0'), known: ['half-open'] };
    const next = runWalks(ctx, { first: 256, count: 256, seed: 5, depth: 30, swarm: false, stopAtFirst: false, targets: ['opened'], milestones: [near] });
    expect(next.hits.length).toBeGreaterThan(10);
    expect(next.hits.length).toBeLessThan(128);
    for (const h of next.hits) expect(h.trace.slice(0, 12)).toEqual([...near.trace, 'digit 0']);
    // A walk from the milestone that violates only what it knows ends in no new milestone.
    expect(next.milestones ?? []).toEqual([]);
  });
});

describe('shrink', () => {
  it('a planted long trace shrinks to the known minimal one', async () => {
    const spec: MmSpec = { variant: 'b3b-clone-enomem', bounds: { procs: 3, pages: 4, maxLen: 2, enomem: 1 }, only: ['counters-exact'] };
    const model = await buildMmModel(spec);
    const planted = 'P0 mmap 2 2; P0 fault 3 w; P0 fork; P1 fault 2 w; P1 mmap 0 1; P1 exit; P0 fork; P0 mmap 0 1; P2 munmap 2 2; P0 mprotect 2 1 r; P2 fault 0 r; P0 munmap 2 1; P0 fault 0 w; P2 exit; P0 mremap 0 1 1 1 maymove,fixed enomem=2'.split('; ');
    expect(testTrace(model, model.initial(), 'counters-exact', planted)?.trace).toEqual(planted);
    const r = shrinkTrace({ model, root: model.initial(), property: 'counters-exact', simplify: simplifyMmTrace, size: mmTraceSize }, planted);
    expect(r.trace).toEqual(B3B_MINIMAL);
    expect(r.details.length).toBeGreaterThan(0);
    // Minimal indeed: no violation in two operations over the bounds the trace uses.
    const small = await buildMmModel({ ...spec, bounds: traceBounds(r.trace, model.bounds) });
    expect(explore(small, { depth: 2 }).violations).toEqual([]);
  });

  it('a process created only to fork is dropped and the rest renumbered', async () => {
    const spec: MmSpec = { variant: 'b3b-clone-enomem', bounds: { procs: 3, pages: 2, maxLen: 1, enomem: 1 }, only: ['counters-exact'] };
    const model = await buildMmModel(spec);
    const planted = ['P0 fork', 'P1 fork', 'P1 exit', 'P2 mmap 0 1', 'P2 fault 0 w', 'P2 mremap 0 1 1 1 maymove,fixed enomem=2'];
    const r = shrinkTrace({ model, root: model.initial(), property: 'counters-exact', simplify: simplifyMmTrace, size: mmTraceSize }, planted);
    expect(r.trace).toEqual(B3B_MINIMAL);
  });

  it('a trace that does not violate the property is refused', async () => {
    const model = await buildMmModel(B3B);
    expect(() => shrinkTrace({ model, root: model.initial(), property: 'counters-exact' }, ['P0 mmap 0 1'])).toThrow(/does not violate/);
    expect(testTrace(model, model.initial(), 'counters-exact', ['P0 mmap 0 9'])).toBeUndefined();
  });
});

describe('the command line', () => {
  it('B3b is found from the empty state, stored shrunk beside its original, and replays; shrink ID shrinks a stored one', async () => {
    const db = join(tmp, 'b3b.db');
    const r = await mmcheck('simulate', '--model', 'b3b-clone-enomem', '--procs', '1', '--pages', '2', '--max-len', '1', '--enomem', '1', '--properties', 'counters-exact', '--walks', '20000', '--seed', '11', '--workers', '2', '--exhaustive-time', '20', '--db', db, '--json');
    expect(r.code, r.stderr).toBe(1);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const v = events.find((e) => e.event === 'violation')!;
    const done = events.find((e) => e.event === 'done')!;
    expect(v.property).toBe('counters-exact');
    // Three operations, as the exhaustive search finds (the walk's may end in another syscall).
    expect((v.trace as string[]).length).toBe(3);
    expect(['none', 'found']).toContain((v.shrink as { exhaustive: { verdict: string } }).exhaustive.verdict);
    expect(done.outcome).toBe('violation');
    const store = openStore(db, { mustExist: true });
    const row = store.getViolation(v.id as number)!;
    const run = store.getRun(done.run as number)!;
    store.close();
    expect(row.trace.split('\n')).toEqual(v.trace);
    expect(row.original_trace!.split('\n')).toEqual(v.original);
    expect(run.seed).toBe('11');
    expect(run.walks).toBe(done.walks);
    const replay = await mmcheck('replay', String(v.id), '--db', db);
    expect(replay.code, replay.stderr).toBe(1);
    expect(replay.stdout).toMatch(/confirmed: counters-exact is violated/);
    const shrink = await mmcheck('shrink', String(v.id), '--db', db, '--exhaustive-time', '0', '--json');
    expect(shrink.code, shrink.stderr).toBe(1);
    expect(JSON.parse(shrink.stdout).trace).toEqual(v.trace);
  });

  it('Ctrl-C stops the walks and records the run as interrupted', async () => {
    const db = join(tmp, 'int.db');
    const child = spawn(process.execPath, [BIN, 'simulate', '--model', 'mainline', '--procs', '2', '--pages', '3', '--time', '100', '--workers', '1', '--db', db, '--json'], { cwd: tmp });
    let stdout = '';
    const started = new Promise<void>((ok) =>
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('"event":"start"')) ok();
      }),
    );
    const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
    await started;
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const done = JSON.parse(stdout.trim().split('\n').at(-1)!) as { event: string; run: number; outcome: string };
    expect(done).toMatchObject({ event: 'done', outcome: 'interrupted' });
    const store = openStore(db, { mustExist: true });
    const run = store.getRun(done.run)!;
    store.close();
    expect(run.outcome).toBe('interrupted');
    expect(run.finished_at).not.toBeNull();
  });

  it('bad input: one line, exit 2, nothing written', async () => {
    const db = join(tmp, 'bad.db');
    for (const args of [
      ['--walks', '0'],
      ['--seed', 'x'],
      ['--ops', 'mmap,frob'],
      ['--model', 'no-such-model'],
      ['--from', 'P0 mmap 0 99'],
      ['--properties', 'nope'],
    ]) {
      const r = await mmcheck('simulate', '--walks', '1', ...args, '--db', db);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(existsSync(db), args.join(' ')).toBe(false);
    }
    const r = await mmcheck('shrink', '7', '--db', db);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(existsSync(db)).toBe(false);
  });
});
