import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MIGRATIONS,
  SCHEMA_VERSION,
  StoreError,
  migrate,
  openStore,
  type RunFinish,
  type ViolationRecord,
} from '../src/store/db.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mmcheck-store-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const violation = (over: Partial<ViolationRecord> = {}): ViolationRecord => ({
  model: 'mainline',
  property: 'rmap-coverage',
  depth: 3,
  trace: ['P0 mmap 0 4', 'P0 fault 1 w', 'P0 fork'],
  finalState: { mms: [] },
  fingerprint: '00ff00ff00ff00ff',
  detail: 'P1 page 1 maps F0 but rmap_walk_anon from A0 does not reach it',
  ...over,
});

const finish = (over: Partial<RunFinish> = {}): RunFinish => ({
  outcome: 'violation',
  generated: 100,
  distinct: 40,
  depthReached: 3,
  durationMs: 12.4,
  violations: [violation()],
  coverage: { mmap: { fired: 10, newStates: 5 }, fork: { fired: 0, newStates: 0 } },
  ...over,
});

const start = { command: 'check', model: 'mm', variant: 'mainline', bounds: { procs: 2 }, maxDepth: 3 };

describe('schema and migrations', () => {
  it('creates a fresh database at the latest schema version, in WAL mode', () => {
    const path = join(dir, 'sub', 'r.db');
    const s = openStore(path);
    expect(s.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = (s.db.prepare(`SELECT name FROM sqlite_master WHERE type='table'`).all() as { name: string }[])
      .map((r) => r.name)
      .sort();
    expect(tables).toEqual(['coverage', 'run_violations', 'runs', 'violations']);
    s.close();
  });

  it('migrates an old database forward, keeping its rows, and reopens idempotently', () => {
    const path = join(dir, 'old.db');
    const raw = new Database(path);
    expect(migrate(raw, 1)).toBe(1);
    raw
      .prepare(`INSERT INTO runs (started_at, command, model, variant, bounds) VALUES ('t', 'check', 'mm', 'mainline', '{}')`)
      .run();
    raw.close();
    const s = openStore(path);
    expect(s.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(s.listRuns()).toHaveLength(1);
    expect(s.listRuns()[0]!.max_depth).toBeNull(); // column added by migration 2
    s.close();
    const again = openStore(path);
    expect(again.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(again.listRuns()).toHaveLength(1);
    again.close();
  });

  it('a failing migration leaves the database at the previous version', () => {
    const path = join(dir, 'partial.db');
    const raw = new Database(path);
    migrate(raw, 1);
    raw.exec('CREATE TABLE run_violations (x INTEGER)'); // makes migration 2 fail half-way
    expect(() => migrate(raw)).toThrow();
    expect(raw.pragma('user_version', { simple: true })).toBe(1);
    const cols = (raw.prepare(`PRAGMA table_info(runs)`).all() as { name: string }[]).map((c) => c.name);
    expect(cols).not.toContain('max_depth');
    raw.close();
  });
});

describe('runs and violations', () => {
  it('records a run: running at start, finished with counts, violations and coverage', () => {
    const s = openStore(join(dir, 'r.db'));
    const id = s.startRun(start);
    expect(s.getRun(id)!.outcome).toBe('running');
    expect(s.getRun(id)!.finished_at).toBeNull();
    const ids = s.finishRun(id, finish());
    const run = s.getRun(id)!;
    expect(run.outcome).toBe('violation');
    expect(run.generated).toBe(100);
    expect(run.distinct_states).toBe(40);
    expect(run.duration_ms).toBe(12);
    expect(run.finished_at).not.toBeNull();
    expect(JSON.parse(run.bounds)).toEqual({ procs: 2 });
    const v = s.getViolation(ids[0]!)!;
    expect(v.trace).toBe('P0 mmap 0 4\nP0 fault 1 w\nP0 fork');
    expect(JSON.parse(v.final_state)).toEqual({ mms: [] });
    expect(s.coverage(id).map((c) => [c.kind, c.fired, c.new_states])).toEqual([
      ['fork', 0, 0],
      ['mmap', 10, 5],
    ]);
    expect(() => s.finishRun(id, finish())).toThrow(/already finished/);
    s.close();
  });

  it('deduplicates the same violation found by two runs, keeping the shorter trace', () => {
    const s = openStore(join(dir, 'r.db'));
    const r1 = s.startRun(start);
    const [v1] = s.finishRun(r1, finish());
    const r2 = s.startRun(start);
    const [v2] = s.finishRun(r2, finish({ violations: [violation({ depth: 2, trace: ['a', 'b'] })] }));
    expect(v2).toBe(v1);
    const row = s.getViolation(v1!)!;
    expect(row.times_seen).toBe(2);
    expect(row.first_run).toBe(r1);
    expect(row.last_run).toBe(r2);
    expect(row.depth).toBe(2);
    expect(row.trace).toBe('a\nb');
    expect(row.trace_run).toBe(r2);
    // A longer trace found later does not replace the shorter one.
    const r2b = s.startRun(start);
    s.finishRun(r2b, finish());
    expect(s.getViolation(v1!)!).toMatchObject({ depth: 2, trace: 'a\nb', trace_run: r2, last_run: r2b, times_seen: 3 });
    expect(s.listViolations()).toHaveLength(1);
    expect(s.runViolations(r1).map((v) => v.id)).toEqual([v1]);
    expect(s.runViolations(r2).map((v) => v.id)).toEqual([v1]);
    // A different fingerprint, property or model is a different violation.
    const r3 = s.startRun(start);
    const ids = s.finishRun(r3, {
      ...finish(),
      violations: [violation({ fingerprint: 'aa' }), violation({ property: 'no-leak' }), violation({ model: 'other' })],
    });
    expect(new Set([...ids, v1]).size).toBe(4);
    expect(s.listRuns().map((r) => r.id)).toEqual([r3, r2b, r2, r1]);
    s.close();
  });

  it('records an interrupted run with what it found', () => {
    const s = openStore(join(dir, 'r.db'));
    const id = s.startRun(start);
    const [v] = s.finishRun(id, finish({ outcome: 'interrupted', generated: 7 }));
    const run = s.getRun(id)!;
    expect(run.outcome).toBe('interrupted');
    expect(run.generated).toBe(7);
    expect(s.getViolation(v!)!.first_run).toBe(id);
    s.close();
  });

  it('a run whose finish fails is left running with nothing half-written', () => {
    const s = openStore(join(dir, 'r.db'));
    const id = s.startRun(start);
    const bad = violation({ fingerprint: null as unknown as string }); // NOT NULL constraint fails
    expect(() => s.finishRun(id, finish({ violations: [violation(), bad] }))).toThrow();
    expect(s.getRun(id)!.outcome).toBe('running');
    expect(s.listViolations()).toHaveLength(0);
    expect(s.coverage(id)).toHaveLength(0);
    s.close();
  });
});

describe('unusable databases', () => {
  it('a file that is not SQLite gives a one-line StoreError naming the file and the fix', () => {
    const path = join(dir, 'junk.db');
    writeFileSync(path, 'this is not a database, just some text that is long enough '.repeat(20));
    let err: unknown;
    try {
      openStore(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    const msg = (err as Error).message;
    expect(msg).toContain(path);
    expect(msg).toMatch(/--db/);
    expect(msg).not.toContain('\n');
  });

  it('a newer schema version is refused and left untouched', () => {
    const path = join(dir, 'new.db');
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => openStore(path)).toThrow(StoreError);
    expect(() => openStore(path)).toThrow(/newer.*upgrade mmcheck/);
    const again = new Database(path);
    expect(again.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    expect(again.prepare(`SELECT count(*) AS n FROM sqlite_master`).get()).toEqual({ n: 0 });
    again.close();
  });

  it('a database locked by another writer gives a StoreError', () => {
    const path = join(dir, 'locked.db');
    openStore(path).close();
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      expect(() => openStore(path, { busyTimeoutMs: 50 })).toThrow(/locked by another process/);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    openStore(path).close();
  });

  it('mustExist does not create a file', () => {
    const path = join(dir, 'absent', 'r.db');
    expect(() => openStore(path, { mustExist: true })).toThrow(StoreError);
    expect(existsSync(join(dir, 'absent'))).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});
