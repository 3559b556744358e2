// Start-up (issue 14): the CLI runs precompiled from dist/ (scripts/build.mjs,
// npm's `prepare`) when dist/ matches the sources, and from the sources
// through tsx otherwise; the compiled program loads TypeScript only for a
// variant file written in it. Tested by mechanism, not by the clock.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript module without types
import { distFreshness } from '../bin/typescript.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const fresh = distFreshness as (root: string, dist: string) => boolean;
const tmp = mkdtempSync(join(tmpdir(), 'mmcheck-startup-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** node <args> with no loader registered, resolved at exit. */
function node(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const c = spawn(process.execPath, args, { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('dist/ is used only when it matches the sources', () => {
  it('fresh when every recorded source has its size and mtime; stale when one changed, vanished, or there is no manifest', () => {
    const root = join(tmp, 'tree');
    mkdirSync(join(root, 'src'), { recursive: true });
    mkdirSync(join(root, 'dist'), { recursive: true });
    const src = join(root, 'src', 'a.ts');
    writeFileSync(src, 'export const a = 1;\n');
    expect(fresh(root, join(root, 'dist'))).toBe(false); // no manifest
    utimesSync(src, 1_700_000_000, 1_700_000_000);
    writeFileSync(join(root, 'dist', 'manifest.json'), JSON.stringify({ files: { 'src/a.ts': [20, 1_700_000_000_000] } }));
    expect(fresh(root, join(root, 'dist'))).toBe(true);
    writeFileSync(src, 'export const a = 2;\n'); // same size, new mtime
    expect(fresh(root, join(root, 'dist'))).toBe(false);
    rmSync(src);
    expect(fresh(root, join(root, 'dist'))).toBe(false);
  });

  it("this checkout's dist/ is fresh after the suite's global setup", () => {
    expect(fresh(ROOT, join(ROOT, 'dist'))).toBe(true);
  });
});

describe('the compiled program', () => {
  const cli = join(ROOT, 'dist', 'src', 'cli.js');

  it('runs commands that explore nothing with no TypeScript loader at all', async () => {
    for (const args of [['--help'], ['models'], ['properties'], ['list', '--db', join(tmp, 'none.db')]]) {
      const r = await node([cli, ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
  });

  it('loads a TypeScript variant file on demand, sharing the compiled model modules', async () => {
    // planted-index.ts imports the model's own ctx.ts and state.ts.
    const r = await node([cli, 'run', 'P0 mmap 0 1; P0 fault 0 w', '--model', join(ROOT, 'test', 'fixtures', 'planted-index.ts'), '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout).violations.map((v: { property: string }) => v.property)).toContain('rmap-coverage');
  });

  it("a variant file outside the repository sees the program's own module instances (the registry of built-in variants)", async () => {
    // A second copy of registry.ts (loaded from the sources) would have no built-in variant registered.
    const file = join(tmp, 'shares.ts');
    writeFileSync(
      file,
      `import { findVariant, type Variant } from '${ROOT}/models/variants/registry.ts';
const v: Variant = {
  name: 'shares', base: 'mainline', description: 'checks module sharing',
  overrides: () => { if (findVariant('b8e-put-root-first') === undefined) throw new Error('a second copy of registry.ts'); return {}; },
};
export default v;
`,
    );
    const r = await node([cli, 'run', 'P0 mmap 0 1', '--model', file]);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('MMCHECK_V8_FLAGS', () => {
  const BIN = join(ROOT, 'bin', 'mmcheck.js');

  it('a flag V8 does not have: one line naming it, exit 2', async () => {
    const r = await node([BIN, 'properties'], { ...process.env, MMCHECK_V8_FLAGS: '--no-parallel-scavenge --bogus-flag' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('mmcheck: MMCHECK_V8_FLAGS: V8 has no flag "--bogus-flag" (see node --v8-options)\n');
  });

  it('flags V8 has, negated or with a value, and the empty list, are taken', async () => {
    for (const flags of ['--max-inlined-bytecode-size-cumulative=200 --no-parallel-scavenge', '']) {
      const r = await node([BIN, 'properties'], { ...process.env, MMCHECK_V8_FLAGS: flags });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('rmap-coverage');
    }
  });
});
