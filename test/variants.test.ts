// Variants (DESIGN.md §6): loading built-in and file variants, refusing
// broken files, the gate, and the bug corpus.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mainlineKernel } from '../models/mm/kernel.ts';
import { createMmModel } from '../models/mm/model.ts';
import { loadModel, VariantError } from '../models/variants/load.ts';
import { resolveKernel, type Variant } from '../models/variants/registry.ts';
import { BUG_CORPUS } from '../models/variants/corpus/index.ts';
import { checkBug, type BugResult } from '../src/cli/bugs.ts';
import { explore } from '../src/engine/explorer.ts';
import { runCli } from './run-cli.ts';

const fixture = (name: string): string => resolve(import.meta.dirname, 'fixtures', name);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mmcheck-variants-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function mmcheck(...args: string[]) {
  return runCli(args, { cwd: dir, env: process.env });
}

describe('loading variants', () => {
  it('a built-in name resolves to its kernel table, with the base functions it does not replace', async () => {
    const m = await loadModel('b8e-put-root-first');
    expect(m.kernel.__put_anon_vma).not.toBe(mainlineKernel.__put_anon_vma);
    expect(m.kernel.anon_vma_clone).toBe(mainlineKernel.anon_vma_clone);
    expect((await loadModel('mainline')).kernel).toBe(mainlineKernel);
  });

  it('a replaced function changes it for every caller (the table is the only way calls go)', async () => {
    let calls = 0;
    const counting: Variant = {
      name: 'counting',
      base: 'mainline',
      description: 'counts maybe_reuse_anon_vma calls',
      overrides: (base) => ({ maybe_reuse_anon_vma: (c, d, a) => (calls++, base.maybe_reuse_anon_vma(c, d, a)) }),
    };
    const m = createMmModel({ kernel: resolveKernel(counting), bounds: { procs: 3 } });
    let s = m.initial();
    for (const t of ['P0 mmap 0 2', 'P0 fault 0 w', 'P0 fork', 'P1 fork']) s = m.next(s, m.parseAction(s, t));
    // Fork of a 1-entry chain tries one candidate, of a 2-entry chain two.
    expect(calls).toBe(3);
  });

  it('a variant file loads at run time and its planted bug is found at the known depth', async () => {
    const m = await loadModel(fixture('planted-index.ts'));
    expect(m.name).toBe('planted-index');
    const r = explore(createMmModel({ name: m.name, kernel: m.kernel, bounds: { procs: 1, pages: 2, maxLen: 1 } }), { depth: 4 });
    expect(r.outcome).toBe('violation');
    expect(r.violations[0]!.property).toBe('rmap-coverage');
    expect(r.violations[0]!.depth).toBe(2);
    expect(r.violations[0]!.traceText).toEqual(['P0 mmap 0 1', 'P0 fault 0 w']);
  });

  const broken: [string, RegExp][] = [
    ['broken-syntax.ts', /broken-syntax\.ts: cannot load: .*\(line 4\)/],
    ['unknown-base.ts', /unknown-base\.ts: unknown model "linux-2\.4"/],
    ['unknown-function.ts', /unknown-function\.ts: .*"anon_vma_clone_typo", which is not a kernel function/],
    ['wrong-shape.ts', /wrong-shape\.ts: the variant's "overrides" must be a function/],
    ['no-such-file.ts', /no-such-file\.ts: no such variant file/],
  ];
  for (const [file, msg] of broken) {
    it(`refuses ${file} with one line naming the file and the problem`, async () => {
      await expect(loadModel(fixture(file))).rejects.toThrow(VariantError);
      await expect(loadModel(fixture(file))).rejects.toThrow(msg);
    });
  }

  it('the command line gives a broken variant exit 2 and one line', async () => {
    const r = await mmcheck('check', '--model', fixture('broken-syntax.ts'), '--db', join(dir, 'r.db'));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/broken-syntax\.ts.*line 4/);
  });
});

describe('gate', () => {
  const SMALL = ['--procs', '1', '--pages', '2', '--max-len', '1', '--depth', '3'];

  it('fails (exit 1) when the patch breaks a property the base keeps, with the shortest trace and a JUnit report', async () => {
    const junit = join(dir, 'gate.xml');
    const r = await mmcheck('gate', '--patch', fixture('planted-index.ts'), '--db', join(dir, 'r.db'), '--junit', junit, ...SMALL);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/FAIL rmap-coverage: the patch violates it at depth 2, the base keeps it/);
    expect(r.stdout).toMatch(/1\. P0 mmap 0 1\n\s+2\. P0 fault 0 w/);
    const xml = readFileSync(junit, 'utf8');
    expect(xml.match(/<testcase /g)!.length).toBeGreaterThanOrEqual(15);
    expect(xml).toMatch(/<testcase classname="mmcheck\.gate\.planted-index" name="rmap-coverage">\s*<failure/);
    expect(xml).toMatch(/<testcase classname="mmcheck\.gate\.planted-index" name="counters-exact"><\/testcase>/);
    // Both runs are stored.
    const list = JSON.parse((await mmcheck('list', '--db', join(dir, 'r.db'), '--json')).stdout);
    expect(list.runs).toHaveLength(2);
  });

  it('passes (exit 0) for a patch that changes nothing, saying what was checked', async () => {
    const r = await mmcheck('gate', '--patch', 'mainline', '--db', join(dir, 'r.db'), ...SMALL);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/checked: depth 3, procs 1, pages 2/);
    expect(r.stdout).toMatch(/PASS/);
  });

  it('does not blame the patch for what the base already violates', async () => {
    const r = await mmcheck('gate', '--base', fixture('planted-index.ts'), '--patch', fixture('planted-index.ts'), '--db', join(dir, 'r.db'), '--json', ...SMALL);
    expect(r.code, r.stderr).toBe(0);
    const verdict = JSON.parse(r.stdout);
    expect(verdict.pass).toBe(true);
    expect(verdict.verdicts.find((v: { property: string }) => v.property === 'rmap-coverage').status).toBe('base');
  });

  it('bad input: unknown patch, exit 2 and nothing written', async () => {
    const r = await mmcheck('gate', '--patch', 'nope', '--db', join(dir, 'r.db'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown model "nope"/);
  });
});

// B2 explores to depth 12: half a minute on a quiet machine, several minutes
// on a loaded one. The limit only guards against a hang.
const CORPUS_TIMEOUT_MS = 600_000;

describe('bug corpus', () => {
  for (const e of BUG_CORPUS) {
    it(`${e.id}: ${e.buggy} violates ${e.property} within depth ${e.depth}; ${e.fixed} keeps it`, async () => {
      // checkBug explores on the worker pool: this thread only coordinates,
      // so vitest's RPC with its main process is never stalled (issue 14).
      const r = await checkBug(e, 2);
      expect(r.foundDepth, 'buggy variant not caught').not.toBeNull();
      expect(r.foundDepth!).toBeLessThanOrEqual(e.depth);
      expect(r.fixedKeeps, 'fixed variant violates the property').toBe(true);
      expect(r.pass).toBe(true);
    }, CORPUS_TIMEOUT_MS);
  }

  it('an entry whose "fixed" variant still has the bug fails', async () => {
    const b8e = BUG_CORPUS.find((x) => x.id === 'B8e')!;
    const r = await checkBug({ ...b8e, fixed: b8e.buggy }, 1);
    expect(r.fixedKeeps).toBe(false);
    expect(r.pass).toBe(false);
  });

  it('mmcheck bugs --only runs one entry and prints the table', async () => {
    const r = await mmcheck('bugs', '--only', 'B8e', '--traces');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/B8e\s+no-use-after-free\s+depth 7/);
    expect((await mmcheck('bugs', '--only', 'B99')).code).toBe(2);
  });
});

describe('fork-reuse-rule', () => {
  // The bug-corpus B2 sequence: P5's fork adopts L for both VMAs; the second
  // adoption finds L already used by the first.
  const B2 =
    'P0 mmap 0 2; P0 fault 0 w; P0 fork; P1 fork; P2 fork; P1 exit; P2 exit; P3 mprotect 1 1 rwx; P3 fork; P4 fork; P5 fault 1 w; P3 exit; P5 fork';
  const violated = (variant: string, ops: string): string[] => {
    const m = createMmModel({ name: variant, kernel: resolveKernel(variant), bounds: { procs: 5, pages: 2, maxLen: 2 } });
    let s = m.initial();
    for (const t of ops.split(';')) s = m.next(s, m.parseAction(s, t.trim()));
    return m.properties.find((p) => p.id === 'fork-reuse-rule')!.check(s);
  };
  it('fires when the degree rule adopts an anon_vma that already has a VMA', async () => {
    expect(violated('b2-degree', B2)).toEqual([expect.stringMatching(/^P6 adopted A\d+, which had a VMA or two children$/)]);
  });
  it('holds for the fixed rule and for mainline, which reuse too (the worked example of §9)', async () => {
    expect(violated('b2-degree-fixed', B2)).toEqual([]);
    expect(violated('mainline', 'P0 mmap 0 2; P0 fault 0 w; P0 fork; P1 fork; P1 munmap 0 2; P2 fork')).toEqual([]);
  });
});
