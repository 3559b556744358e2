// The command line end to end: spawn `node bin/mmcheck.js ...` in a temporary
// directory with --db in it, and check exit codes, one-line errors and what
// is (not) written.
//
// Exit code 1 needs a model that violates a property. mainline must not, so
// those tests run the test-only variant test/fixtures/planted-index.ts (a
// folio index off by one: rmap-coverage breaks at depth 2), or another
// variant named by MMCHECK_TEST_BUGGY_MODEL with MMCHECK_TEST_BUGGY_OPS.

import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ScenarioBuilder } from '../models/mm/scenario.ts';
import { ZERO_PAGE } from '../models/mm/state.ts';
import { stateToJson } from '../src/report/json.ts';
import { renderDiff, renderState } from '../src/report/text.ts';
import { BIN, runCli, type Res } from './run-cli.ts';

const BUGGY_MODEL = process.env.MMCHECK_TEST_BUGGY_MODEL ?? resolve(import.meta.dirname, 'fixtures', 'planted-index.ts');
const BUGGY_OPS = process.env.MMCHECK_TEST_BUGGY_OPS ?? 'P0 mmap 0 1; P0 fault 0 w';
const BUGGY_DEPTH = process.env.MMCHECK_TEST_BUGGY_DEPTH ?? '2';
const haveBuggy = BUGGY_MODEL !== undefined && BUGGY_OPS !== undefined;

/** Small bounds so that `check` finishes in seconds whatever the model's speed. */
const SMALL = ['--procs', '2', '--pages', '2', '--max-len', '1', '--depth', '2'];

let dir: string;
let db: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mmcheck-cli-'));
  db = join(dir, 'r.db');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function mmcheck(...args: string[]): Promise<Res> {
  return runCli(args, { cwd: dir, timeoutMs: 110_000 });
}

/** A user error: exit 2, exactly one line on stderr, no stack trace. */
function expectBadInput(r: Res, mentions: RegExp): void {
  expect(r.code, `stderr: ${r.stderr}`).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^mmcheck: /);
  expect(lines[0]).toMatch(mentions);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('models and properties', () => {
  it('lists mainline among the models', async () => {
    const r = await mmcheck('models');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').map((l) => l.split(/\s+/)[0])).toContain('mainline');
    expect(JSON.parse((await mmcheck('models', '--json')).stdout).map((m: { name: string }) => m.name)).toContain('mainline');
  });

  it('lists the properties of DESIGN.md §4 with when, description and rule', async () => {
    const r = await mmcheck('properties', '--json');
    expect(r.code).toBe(0);
    const ps = JSON.parse(r.stdout) as { id: string; when: string; description: string; rule: string }[];
    expect(ps.map((p) => p.id)).toEqual(expect.arrayContaining(['rmap-coverage', 'counters-exact']));
    for (const p of ps) {
      expect(p.description.length).toBeGreaterThan(0);
      expect(p.rule.length).toBeGreaterThan(0);
      expect(['always', 'quiescent', 'end', 'transition']).toContain(p.when);
    }
    expectBadInput(await mmcheck('properties', '--model', 'no-such-model'), /no-such-model/);
  });
});

describe('run', () => {
  const OPS = 'P0 mmap 0 4; P0 fault 1 w; P0 fork';
  /** Bounds under which OPS is enabled whatever the model's defaults. */
  const B = ['--procs', '2', '--pages', '8', '--max-len', '4'];

  it('executes operations and prints the final state: exit 0 on mainline', async () => {
    const r = await mmcheck('run', OPS, ...B);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('P1');
    expect(r.stdout).toContain('F0');
    expect(r.stdout).toMatch(/no property violated/);
  });

  it('prints the §2 JSON shape with model ids', async () => {
    const r = await mmcheck('run', OPS, ...B, '--json');
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.mms.map((m: { id: string }) => m.id)).toEqual(['P0', 'P1']);
    expect(s.mms[0].vmas[0]).toMatchObject({ start: 0, end: 4, pgoff: 0, prot: 'rw', anonVma: 'A0' });
    expect(s.mms[0].vmas[0].chain[0]).toBe('A0');
    expect(s.mms[0].ptes).toEqual([{ page: 1, folio: 'F0', writable: false }]); // write-protected by fork (COW)
    expect(s.folios).toHaveLength(1);
    expect(s.folios[0]).toMatchObject({ id: 'F0', anonVma: 'A0', index: 1, mapcount: 2, exclusive: false });
    expect(s.anonVmas[0]).toMatchObject({ id: 'A0', root: 'A0', freed: false });
    expect(s.warnings).toEqual([]);
    expect(s.violations).toEqual([]);
  });

  it('--steps prints what every step changed', async () => {
    const r = await mmcheck('run', OPS, ...B, '--steps');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step 1: P0 mmap 0 4\n\s+\+ P0 vma \[0,4\)/);
    expect(r.stdout).toMatch(/step 3: P0 fork\n(.*\n)*?\s+\+ P1/);
  });

  it('reads operations from a file with comments and blank lines', async () => {
    const file = join(dir, 'scenario.txt');
    writeFileSync(file, '# a scenario\nP0 mmap 0 4   # map\n\nP0 fault 1 w\n');
    const r = await mmcheck('run', '--file', file, ...B, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).folios).toHaveLength(1);
  });

  it('takes the bounds its trace needs: three forks, page 9, an ENOMEM injection, a walker (issue 14)', async () => {
    const trace = 'P0 mmap 0 1; P0 fork; P0 fork; P1 fork; P3 mmap 9 1; P3 fault 9 w; P3 munmap 9 1 enomem=1';
    const r = await mmcheck('run', trace, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).mms.map((m: { id: string }) => m.id)).toEqual(['P0', 'P1', 'P2', 'P3']);
    // Exploration bounds given anyway only raise what the trace needs.
    expect((await mmcheck('run', trace, '--procs', '2', '--pages', '4')).code).toBe(0);
    // Threads and walkers need lock granularity: the trace says so.
    const w = await mmcheck('run', 'P0 mmap 0 2; P0 fault 0 w; W reclaim P0 0; W0 step', '--json');
    expect(w.code, w.stderr).toBe(0);
  });

  it('a malformed operation: exit 2 with one line naming it', async () => {
    expectBadInput(await mmcheck('run', 'P0 mmap 0 1; P0 frobnicate 1'), /frobnicate/);
    expectBadInput(await mmcheck('run', 'P0 mmap zero 4'), /P0 mmap zero 4/);
    // The operation is named once.
    expectBadInput(await mmcheck('run', 'P0 mmap'), /^mmcheck: step 1 "P0 mmap": missing address$/);
    expectBadInput(await mmcheck('run', 'P7 fork'), /P7/);
    expectBadInput(await mmcheck('run'), /no operations/);
    expectBadInput(await mmcheck('run', '--file', join(dir, 'missing.txt')), /missing\.txt/);
    expectBadInput(await mmcheck('run', OPS, '--model', 'nope'), /unknown model "nope"/);
    expectBadInput(await mmcheck('run', OPS, '--pages', '0'), /--pages/);
  });

  it.skipIf(!haveBuggy)(`exit 1 when a property is violated`, async () => {
    const r = await mmcheck('run', BUGGY_OPS!, '--model', BUGGY_MODEL!, '--json');
    expect(r.code, r.stderr).toBe(1);
    const s = JSON.parse(r.stdout);
    expect([...s.violations, ...(s.stepViolations ?? [])].length).toBeGreaterThan(0);
  });
});

describe('check', () => {
  const bad: [string[], RegExp][] = [
    [['--model', 'nope'], /unknown model "nope"/],
    [['--depth', 'three'], /--depth/],
    [['--depth', '1.5'], /--depth/],
    [['--procs', '0'], /--procs/],
    [['--pages', '0'], /--pages/],
    [['--max-len', '0'], /--max-len/],
    [['--pages', '2', '--max-len', '3'], /--max-len 3 is larger than --pages 2/],
    [['--ops', 'mmap,teleport'], /teleport/],
    [['--enomem', '-1'], /--enomem must be at least 0, got -1/],
    [['--depth', '-1'], /--depth must be at least 0, got -1/],
    [['--from', 'P0 mmap 0 1; P0 dance'], /dance/],
    [['--from', 'P0 mmap 0 1; P0 fault 0 w; P0 fork', '--depth', '2'], /--from has 3 operations, more than --depth 2/],
    [['--no-such-option'], /no-such-option/],
    [['--workers', '0'], /--workers must be at least 1/],
    [['--max-memory', 'abc'], /--max-memory must be a whole number/],
    [['--checkpoint-every', 'soon'], /--checkpoint-every/],
    [['--resume', 'x'], /--resume/],
  ];
  for (const [args, msg] of bad)
    it(`bad input ${args.join(' ')}: exit 2, one line, no database written`, async () => {
      expectBadInput(await mmcheck('check', '--db', db, ...args), msg);
      expect(readdirSync(dir)).toEqual([]);
    });

  it('explores, records the run and prints the summary: exit 0 on mainline', async () => {
    const r = await mmcheck('check', '--db', db, ...SMALL);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/states generated/);
    expect(r.stdout).toMatch(/distinct states/);
    expect(r.stdout).toMatch(/outcome: (complete|depth-reached)/);
    expect(r.stdout).toMatch(/coverage/);
    expect(r.stdout).toMatch(/never fired/);
    expect(r.stdout).toMatch(/collision probability/);
    // One verdict line ends it (issue 14).
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(/^PASS: \d+ properties hold on [\d,]+ distinct states to depth 2 \(\d+\.\d s\)$/);
    expect(existsSync(db)).toBe(true);
    const list = JSON.parse((await mmcheck('list', '--db', db, '--json')).stdout);
    expect(list.runs).toHaveLength(1);
    expect(list.runs[0]).toMatchObject({ variant: 'mainline', modelName: 'mainline', max_depth: 2 });
    expect(list.runs[0].boundsText).toMatch(/^procs 2, pages 2, max-len 1, ops mmap,fault,fork,munmap,mprotect,mremap,exit, enomem 0, granularity syscall$/);
    expect(['complete', 'depth-reached']).toContain(list.runs[0].outcome);
    expect(list.runs[0].generated).toBeGreaterThan(0);
    expect(list.violations).toEqual([]);
  });

  it('--json prints one event per line, ending with done', async () => {
    const r = await mmcheck('check', '--db', db, ...SMALL, '--json');
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const done = events.at(-1);
    expect(done.event).toBe('done');
    expect(done.generated).toBeGreaterThan(0);
    expect(done.distinct).toBeGreaterThan(0);
    expect(done.depthReached).toBeLessThanOrEqual(2);
    expect(done.coverage).toHaveProperty('mmap');
    expect(Array.isArray(done.neverFired)).toBe(true);
  });

  it('--from starts from a scenario (counted in the depth)', async () => {
    const r = await mmcheck('check', '--db', db, '--from', 'P0 mmap 0 1', '--procs', '1', '--pages', '2', '--max-len', '1', '--depth', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(done.depthReached).toBeGreaterThanOrEqual(1);
  });

  it('a corrupt or newer database: exit 2, one line, file untouched', async () => {
    writeFileSync(db, 'not a database '.repeat(100));
    expectBadInput(await mmcheck('check', '--db', db, ...SMALL), /r\.db.*--db/);
    expectBadInput(await mmcheck('list', '--db', db), /r\.db/);
  });

  it.skipIf(!haveBuggy)('exit 1 on a violation; replay confirms it with exit 1 (needs MMCHECK_TEST_BUGGY_MODEL/OPS)', async () => {
    const depth = BUGGY_DEPTH ?? String(BUGGY_OPS!.split(/[;\n]/).filter((l) => l.trim() !== '').length);
    const r = await mmcheck('check', '--db', db, '--model', BUGGY_MODEL!, '--depth', depth, '--json');
    expect(r.code, r.stderr).toBe(1);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const v = events.find((e) => e.event === 'violation');
    expect(v).toBeDefined();
    expect(events.at(-1)).toMatchObject({ event: 'done', outcome: 'violation' });
    const rep = await mmcheck('replay', String(v.id), '--db', db);
    expect(rep.code, rep.stderr).toBe(1);
    expect(rep.stdout).toContain(`confirmed: ${v.property} is violated`);
    const json = JSON.parse((await mmcheck('replay', String(v.id), '--db', db, '--format', 'json')).stdout);
    expect(json.reproduced).toBe(true);
    expect(json.steps).toHaveLength(v.trace.length);
    // Found again: the same violation, seen twice; in text, a verdict line ends the output.
    const again = await mmcheck('check', '--db', db, '--model', BUGGY_MODEL!, '--depth', depth);
    expect(again.code).toBe(1);
    expect(again.stdout.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^FAIL: .*${v.property}.* violated at depth \\d+ \\([\\d,]+ distinct states explored, \\d+\\.\\d s\\); mmcheck replay ${v.id} --db `));
    const list = JSON.parse((await mmcheck('list', '--db', db, '--json')).stdout);
    expect(list.violations.find((x: { id: number }) => x.id === v.id).times_seen).toBe(2);
    // list names the run's model as its violations are named, and shows what the run explored (issue 14).
    const text = (await mmcheck('list', '--db', db)).stdout;
    const model = list.violations.find((x: { id: number }) => x.id === v.id).model as string;
    expect(list.runs[0].modelName).toBe(model);
    expect(text).toMatch(new RegExp(`^\\s+\\d+\\s+\\S+ \\S+\\s+${model}\\s+depth ${depth}\\s`, 'm'));
    expect(text).not.toContain(BUGGY_MODEL!);
    expect(text).toMatch(/^\s+procs \d+, pages \d+, max-len \d+, ops [a-z,]+, enomem \d+, granularity syscall$/m);
  });
});

describe('lock points a variant turns off', () => {
  it('check and gate say in one line which replaced function runs uncut at lock granularity; mainline and the relocate variants (cut by their own steps) say nothing', async () => {
    const lock = ['--granularity', 'lock', '--depth', '1', '--procs', '1', '--pages', '2', '--max-len', '1', '--db', db];
    const fixture = resolve(import.meta.dirname, 'fixtures', 'own-lock-point.ts');
    const own = await mmcheck('check', '--model', fixture, ...lock);
    expect(own.code, own.stderr).toBe(0);
    const notes = own.stderr.split('\n').filter((l) => l.includes('note:'));
    expect(notes).toHaveLength(1);
    // It takes over move_page_tables with a step of its own: only the other two are named.
    expect(notes[0]).toMatch(/own-lock-point replaces copy_vma_and_data; at lock granularity its path runs without mainline's lock points move_ptes, copy_vma_and_data_finish, so/);
    const relocate = await mmcheck('check', '--model', 'relocate-v3', ...lock);
    expect(relocate.code, relocate.stderr).toBe(0);
    expect(relocate.stderr).not.toMatch(/note:/);
    const mainline = await mmcheck('check', ...lock);
    expect(mainline.stderr).not.toMatch(/note:/);
    // At syscall granularity nothing is cut, so nothing is turned off.
    const syscall = await mmcheck('check', '--model', fixture, '--depth', '1', '--procs', '1', '--db', db);
    expect(syscall.stderr).not.toMatch(/note:/);
    const gate = await mmcheck('gate', '--base', 'mainline', '--patch', fixture, ...lock);
    expect(gate.stderr.split('\n').filter((l) => l.includes('note:'))).toHaveLength(1);
  });
});

describe('list and replay', () => {
  it('list on a missing database says so and creates nothing', async () => {
    const r = await mmcheck('list', '--db', db);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/no runs recorded/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('replay of an unknown id or a bad id: exit 2', async () => {
    expectBadInput(await mmcheck('replay', '1', '--db', db), /no results database/);
    expect(readdirSync(dir)).toEqual([]);
    expect((await mmcheck('check', '--db', db, ...SMALL)).code).toBe(0);
    expectBadInput(await mmcheck('replay', '42', '--db', db), /no violation 42/);
    expectBadInput(await mmcheck('replay', 'x', '--db', db), /positive whole number/);
    expectBadInput(await mmcheck('replay', '1', '--db', db, '--format', 'pdf'), /--format must be one of text, json, dot, svg, html/);
  });

  it('an unknown command: exit 2', async () => {
    expectBadInput(await mmcheck('frobnicate'), /frobnicate/);
  });
});

describe('reports (what run, replay and the store print)', () => {
  /** P-ids with a gap, a freed anon_vma tombstone, a dropped folio, the zero page. */
  function scene() {
    const b = new ScenarioBuilder();
    const m0 = b.mm();
    const gone = b.mm();
    const m2 = b.mm({ parent: m0 });
    delete b.s.mms[gone];
    const a0 = b.anonVma({ refcount: 2, numChildren: 2, numActiveVmas: 1 });
    const a1 = b.anonVma({ parent: a0, freed: true });
    const a2 = b.anonVma({ parent: a0, refcount: 1, numChildren: 1, numActiveVmas: 1 });
    const v0 = b.vma(m0, { start: 0, end: 4 });
    b.link(v0, a0);
    b.setAnon(v0, a0);
    const v2 = b.vma(m2, { start: 2, end: 6, prot: 'rx', close: true });
    b.linkAll(v2, [a0, a2]); // chain head first: a2, then a0
    b.setAnon(v2, a2);
    const dropped = b.folio();
    b.dropFolio(dropped);
    const f = b.folio({ anonVma: a0, index: 1, exclusive: true });
    b.pte(m0, 1, f);
    b.pte(m2, 3, ZERO_PAGE, { writable: false });
    return { b, m0, m2, a0, a1, a2, v0, v2, f };
  }

  it('stateToJson names objects by model id in the §2 shape', async () => {
    const { b } = scene();
    const j = stateToJson(b.s, [{ property: 'rmap-coverage', detail: 'd' }]);
    expect(j.mms.map((m) => m.id)).toEqual(['P0', 'P2']); // P1 is the gap
    expect(j.mms[0]!.vmas[0]).toMatchObject({ start: 0, end: 4, pgoff: 0, prot: 'rw', anonVma: 'A0', chain: ['A0'] });
    expect(j.mms[1]!.vmas[0]).toMatchObject({ start: 2, end: 6, pgoff: 2, prot: 'rx', anonVma: 'A2', chain: ['A2', 'A0'] });
    expect(j.mms[1]!.vmas[0]!.flags).toContain('close');
    expect(j.mms[0]!.ptes).toEqual([{ page: 1, folio: 'F1', writable: true }]); // F0 was dropped
    expect(j.mms[1]!.ptes).toEqual([{ page: 3, folio: 'zero', writable: false }]);
    expect(j.anonVmas.map((a) => [a.id, a.root, a.parent, a.freed])).toEqual([
      ['A0', 'A0', 'A0', false],
      ['A1', 'A0', 'A0', true],
      ['A2', 'A0', 'A0', false],
    ]);
    expect(j.anonVmas[0]).toMatchObject({ refcount: 2, numChildren: 2, numActiveVmas: 1, tree: ['P0:0-4', 'P2:2-6'] });
    expect(j.folios).toEqual([{ id: 'F1', anonVma: 'A0', index: 1, mapcount: 1, exclusive: true, pinned: false, nrPages: 1, data: ['zeros'] }]);
    expect(j.violations).toEqual([{ property: 'rmap-coverage', detail: 'd' }]);
  });

  it('renderState shows processes, the anon_vma tree by parent, folios and warnings', async () => {
    const { b } = scene();
    b.s.warnings.push('unlink_anon_vmas');
    const t = renderState(b.s);
    expect(t).toMatch(/^P0\n  vma \[0,4\) pgoff 0 rw anon A0 chain \[A0\]\n  ptes 1->F1 w$/m);
    expect(t).toMatch(/^P2 \(forked from P0\)\n  vma \[2,6\) pgoff 2 rx anon A2 chain \[A2 A0\] close\n  ptes 3->zero$/m);
    expect(t).toMatch(/^  A0 root ref 2 ch 2 act 1 tree \[P0:0-4, P2:2-6\]$/m);
    expect(t).toMatch(/^    A1 root A0 ref 0 ch 0 act 0 tree \[\] FREED$/m); // indented under A0
    expect(t).toMatch(/^    A2 root A0 ref 1 ch 1 act 1 tree \[P2:2-6\]$/m);
    expect(t).toMatch(/^  F1 mapping A0 index 1 mapcount 1 exclusive$/m);
    expect(t).toMatch(/^warnings unlink_anon_vmas$/m);
  });

  it('renderState names an exited parent by its id, not as a dangling P?<id>', async () => {
    const { b, m0 } = scene();
    delete b.s.mms[m0];
    const t = renderState(b.s);
    expect(t).toMatch(/^P2 \(forked from P0 \(exited\)\)$/m);
    expect(t).not.toMatch(/forked from P\?/);
  });

  it('renderDiff lists only what changed', async () => {
    const { b, m0, a2, v2, f } = scene();
    const before = structuredClone(b.s);
    expect(renderDiff(before, b.s)).toBe('');
    b.unpte(m0, 1);
    b.s.folios[f]!.exclusive = 0;
    b.s.anonVmas[a2]!.freed = true;
    b.s.anonVmas[a2]!.numActiveVmas = 0;
    b.s.vmas[v2]!.end = 5;
    b.s.warnings.push('folio_move_anon_rmap');
    const lines = renderDiff(before, b.s).split('\n');
    expect(lines).toContain('- P0 pte 1->F1 w');
    expect(lines).toContain('~ P2 vma [2,6) pgoff 2 rx anon A2 chain [A2 A0] close  =>  [2,5) pgoff 2 rx anon A2 chain [A2 A0] close');
    expect(lines).toContain('- A2 freed');
    expect(lines.some((l) => /^~ A2 .*act 1->0/.test(l))).toBe(true);
    expect(lines.some((l) => /^~ F1 .*mapcount 1 exclusive  =>  mapping A0 index 1 mapcount 0$/.test(l))).toBe(true);
    expect(lines).toContain('! warning folio_move_anon_rmap');
    expect(lines.some((l) => l.includes('P0 vma'))).toBe(false); // unchanged
  });
});

describe('Ctrl-C', () => {
  it('SIGINT during a check stops it cleanly: exit 130, the run recorded as interrupted, the database consistent', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [BIN, 'check', '--db', db, '--depth', '9', '--procs', '3', '--checkpoint-every', '0'], { cwd: dir });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    // Wait until the run is recorded and the search is under way.
    const started = Date.now();
    while (!/\(run \d+\)/.test(stdout) && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    const list = JSON.parse((await mmcheck('list', '--db', db, '--json')).stdout);
    expect(list.runs).toHaveLength(1);
    expect(list.runs[0].outcome).toBe('interrupted');
    expect(list.runs[0].distinct_states).toBeGreaterThan(0);
    const Database = (await import('better-sqlite3')).default;
    const conn = new Database(db, { readonly: true });
    expect(conn.pragma('integrity_check', { simple: true })).toBe('ok');
    conn.close();
    // The checkpoint is the last level boundary, whole (temp file + rename), and matches the recorded run.
    const { readCheckpoint } = await import('../src/engine/checkpoint.ts');
    const c = readCheckpoint(join(dir, 'checkpoints', 'r.db-1.ckpt'));
    expect(c.visitedSize).toBe(list.runs[0].distinct_states);
    expect(c.generated).toBe(list.runs[0].generated);
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['r.db-1.ckpt']);
  });

  it('SIGINT delivered twice at once (`timeout -s INT`: to the process and to its group) is one interrupt, not an abort', async () => {
    const { spawn } = await import('node:child_process');
    // Two SIGINTs sent back to back merge into one pending signal; the second
    // must come after the first was handled, as coreutils' does. The window
    // is widened so that a slow machine cannot make the pair "later".
    const env = { ...process.env, MMCHECK_SAME_INTERRUPT_MS: '600000' };
    const child = spawn(process.execPath, [BIN, 'check', '--db', db, '--depth', '9', '--procs', '3'], { cwd: dir, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    while (!/\(run \d+\)/.test(stdout)) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    while (!/interrupted: stopping/.test(stderr) && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code, stderr).toBe(130);
    expect(stderr).not.toMatch(/aborted/);
    const list = JSON.parse((await mmcheck('list', '--db', db, '--json')).stdout);
    // Stopped cleanly at a level boundary (not aborted): the run has its counts there.
    expect(list.runs[0]).toMatchObject({ outcome: 'interrupted', error: null });
    expect(list.runs[0].distinct_states).toBeGreaterThan(0);
  });

  it('SIGTERM (a timeout, a CI runner) stops it the same way: the run recorded as interrupted', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [BIN, 'check', '--db', db, '--depth', '9', '--procs', '3'], { cwd: dir });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const started = Date.now();
    while (!/\(run \d+\)/.test(stdout) && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    const list = JSON.parse((await mmcheck('list', '--db', db, '--json')).stdout);
    expect(list.runs.map((r: { outcome: string }) => r.outcome)).toEqual(['interrupted']);
  });
});

describe('check on worker threads: --resume, --max-memory', () => {
  const bounds = ['--procs', '2', '--pages', '3', '--max-len', '1', '--continue', '--json'];
  const done = (r: Res): Record<string, unknown> => JSON.parse(r.stdout.trim().split('\n').at(-1)!);

  it('--resume of an unknown run: exit 2, one line', async () => {
    expect((await mmcheck('check', '--db', db, '--depth', '2', ...bounds)).code).toBe(0);
    expectBadInput(await mmcheck('check', '--db', db, '--resume', '7', '--depth', '3'), /no run 7/);
    expectBadInput(await mmcheck('check', '--db', db, '--resume', '1', '--depth', '3'), /run 1 has no checkpoint/);
  });

  it('a depth-bounded run resumed to a greater depth ends with the counts of an uninterrupted run', async () => {
    const first = await mmcheck('check', '--db', db, '--depth', '3', '--workers', '2', '--checkpoint-every', '0', ...bounds);
    expect(first.code, first.stderr).toBe(0);
    expect(done(first).checkpointDepth).toBe(3);
    expect(existsSync(join(dir, 'checkpoints', 'r.db-1.ckpt'))).toBe(true);
    const resumed = await mmcheck('check', '--db', db, '--resume', '1', '--depth', '4', '--workers', '1', '--json');
    const direct = await mmcheck('check', '--db', db, '--depth', '4', '--workers', '2', ...bounds);
    expect(resumed.code, resumed.stderr).toBe(0);
    const keys = ['outcome', 'generated', 'distinct', 'depthReached', 'levelSizes', 'coverage', 'collisionProbability'];
    const pick = (o: Record<string, unknown>) => Object.fromEntries(keys.map((k) => [k, o[k]]));
    expect(pick(done(resumed))).toEqual(pick(done(direct)));
    expect(done(resumed).resumedFrom).toBe(1);
  });

  it('a checkpoint is bound to its database, its run and its model file: anything else is refused, exit 2', async () => {
    // Two databases in one folder each have a run 1 (issue 14).
    const a = join(dir, 'a.db');
    const b = join(dir, 'b.db');
    const small = ['--procs', '1', '--pages', '2', '--max-len', '1', '--depth', '1', '--checkpoint-every', '0'];
    expect((await mmcheck('check', '--db', a, ...small)).code).toBe(0);
    expect((await mmcheck('check', '--db', b, ...small, '--pages', '3')).code).toBe(0);
    expect(readdirSync(join(dir, 'checkpoints')).sort()).toEqual(['a.db-1.ckpt', 'b.db-1.ckpt']);
    const own = await mmcheck('check', '--db', a, '--resume', '1', '--depth', '2', '--json');
    expect(own.code, own.stderr).toBe(0);
    // b's checkpoint under a's name: its identity says whose it is.
    const { copyFileSync } = await import('node:fs');
    copyFileSync(join(dir, 'checkpoints', 'b.db-1.ckpt'), join(dir, 'checkpoints', 'a.db-1.ckpt'));
    expectBadInput(await mmcheck('check', '--db', a, '--resume', '1', '--depth', '2'), /belongs to run 1 started .* of .*b\.db, not to run 1 of .*a\.db/);
    // Run 2 of a.db (the resumed one) has its own checkpoint; run 1's is not run 2's.
    copyFileSync(join(dir, 'checkpoints', 'b.db-1.ckpt'), join(dir, 'checkpoints', 'a.db-2.ckpt'));
    expectBadInput(await mmcheck('check', '--db', a, '--resume', '2', '--depth', '3'), /belongs to run 1 .*not to run 2/);
    // A variant file edited after the checkpoint is another model.
    const variant = join(dir, 'v.ts');
    copyFileSync(BUGGY_MODEL, variant);
    const { readFileSync: read } = await import('node:fs');
    writeFileSync(variant, read(variant, 'utf8').replace(/from '\.\.\/\.\.\//g, `from '${resolve(import.meta.dirname, '..')}/`));
    const c = join(dir, 'c.db');
    const first = await mmcheck('check', '--db', c, '--model', variant, ...small);
    expect(first.code, first.stderr).toBe(0);
    writeFileSync(variant, read(variant, 'utf8') + '\n// edited\n');
    expectBadInput(await mmcheck('check', '--db', c, '--resume', '1', '--depth', '2'), /model file .*v\.ts changed/);
  });

  it('--max-memory: a clean stop, exit 3, the run recorded as interrupted', async () => {
    const r = await mmcheck('check', '--db', db, '--depth', '4', '--max-memory', '1', ...bounds);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/memory limit of 1 MB/);
    const list = JSON.parse((await mmcheck('list', '--db', db, '--json')).stdout);
    expect(list.runs[0].outcome).toBe('interrupted');
    expect(list.runs[0].error).toMatch(/memory limit/);
  });
});
