// The test suite itself: nothing blocks the vitest worker's thread. vitest
// talks to each worker over RPC on that thread's event loop; a test that
// blocks it (spawnSync of the CLI, a long synchronous search) past the RPC
// timeout makes `npm test` exit 1 with every test passing, on a busy
// machine (issue 14). Child processes in tests go through test/run-cli.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = import.meta.dirname;

describe('test hygiene', () => {
  it('no test blocks its worker on a child process (spawnSync, execFileSync, execSync)', () => {
    const offenders: string[] = [];
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(join(dir, f), 'utf8');
      text.split('\n').forEach((line, i) => {
        if (/^\s*(\/\/|\*)/.test(line)) return; // comments may name them
        if (/\b(spawnSync|execFileSync|execSync)\s*\(/.test(line)) offenders.push(`${f}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});

describe('between two tests the event loop turns (test/setup-yield.ts)', () => {
  // A macrotask queued by one test has run when the next starts: vitest's RPC
  // answers (macrotasks too) are read between tests, not only when a file ends.
  let ran = false;
  it('queues a macrotask', () => {
    setImmediate(() => (ran = true));
  });
  it('finds it run', () => {
    expect(ran).toBe(true);
  });
});
