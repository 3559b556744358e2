// The results database (DESIGN.md §7): runs, violations deduplicated across
// runs, and per-run coverage, in SQLite (better-sqlite3, WAL). A run row is
// inserted when a check starts (outcome 'running') and finished in one
// transaction with its violations and coverage, so nothing is half-written.

import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const DEFAULT_DB_PATH = 'results/mmcheck.db';

/** A database that cannot be used: one line naming the file and the fix (exit code 2). */
export class StoreError extends Error {
  override name = 'StoreError';
}

export type RunOutcome = 'running' | 'violation' | 'complete' | 'depth-reached' | 'interrupted' | 'error';
export const RUN_OUTCOMES: readonly RunOutcome[] = [
  'running',
  'violation',
  'complete',
  'depth-reached',
  'interrupted',
  'error',
];

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

/** Ordered schema migrations; `PRAGMA user_version` is the last one applied. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'runs, violations (deduplicated by model, property, fingerprint), coverage',
    sql: `
      CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        command TEXT NOT NULL,
        model TEXT NOT NULL,
        variant TEXT NOT NULL,
        bounds TEXT NOT NULL,
        workers INTEGER NOT NULL DEFAULT 1,
        generated INTEGER NOT NULL DEFAULT 0,
        distinct_states INTEGER NOT NULL DEFAULT 0,
        depth_reached INTEGER NOT NULL DEFAULT 0,
        duration_ms INTEGER NOT NULL DEFAULT 0,
        outcome TEXT NOT NULL DEFAULT 'running'
          CHECK (outcome IN ('running','violation','complete','depth-reached','interrupted','error'))
      );
      CREATE TABLE violations (
        id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        property TEXT NOT NULL,
        depth INTEGER NOT NULL,
        trace TEXT NOT NULL,
        final_state TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        detail TEXT NOT NULL,
        first_run INTEGER NOT NULL REFERENCES runs(id),
        last_run INTEGER NOT NULL REFERENCES runs(id),
        times_seen INTEGER NOT NULL DEFAULT 1,
        UNIQUE (model, property, fingerprint)
      );
      CREATE TABLE coverage (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        kind TEXT NOT NULL,
        fired INTEGER NOT NULL,
        new_states INTEGER NOT NULL,
        PRIMARY KEY (run_id, kind)
      );
    `,
  },
  {
    version: 2,
    description: 'requested depth and error per run; the run whose trace is stored; which run saw which violation',
    sql: `
      ALTER TABLE runs ADD COLUMN max_depth INTEGER;
      ALTER TABLE runs ADD COLUMN error TEXT;
      ALTER TABLE violations ADD COLUMN trace_run INTEGER REFERENCES runs(id);
      UPDATE violations SET trace_run = first_run;
      CREATE TABLE run_violations (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        violation_id INTEGER NOT NULL REFERENCES violations(id),
        PRIMARY KEY (run_id, violation_id)
      );
      CREATE INDEX violations_last_run ON violations(last_run);
    `,
  },
  {
    version: 3,
    description: 'simulate: the seed and walks of a run; the trace a violation was shrunk from, and how',
    sql: `
      ALTER TABLE runs ADD COLUMN seed TEXT;
      ALTER TABLE runs ADD COLUMN walks INTEGER;
      ALTER TABLE violations ADD COLUMN original_trace TEXT;
      ALTER TABLE violations ADD COLUMN shrink TEXT;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export interface RunStart {
  command: string;
  /** Model family, e.g. "mm". */
  model: string;
  /** Variant name, e.g. "mainline". */
  variant: string;
  bounds: unknown;
  workers?: number;
  maxDepth?: number;
  /** simulate: the seed of its walks (as text: it may not fit a SQLite integer). */
  seed?: string;
}

export interface ViolationRecord {
  /** The model's name (distinguishes variants); part of the dedup key. */
  model: string;
  property: string;
  depth: number;
  /** Operations in the syntax of DESIGN.md §3, one per element. */
  trace: string[];
  finalState: unknown;
  fingerprint: string;
  detail: string;
  /** A shrunk trace: the trace it was shrunk from. */
  originalTrace?: string[];
  /** A shrunk trace: how (JSON: method, candidates, the exhaustive search for a shorter one). */
  shrink?: unknown;
}

export interface RunFinish {
  outcome: Exclude<RunOutcome, 'running'>;
  generated: number;
  distinct: number;
  depthReached: number;
  durationMs: number;
  violations?: ViolationRecord[];
  coverage?: Record<string, { fired: number; newStates: number }>;
  error?: string;
  /** simulate: walks run. */
  walks?: number;
}

export interface RunRow {
  id: number;
  started_at: string;
  finished_at: string | null;
  command: string;
  model: string;
  variant: string;
  bounds: string;
  workers: number;
  generated: number;
  distinct_states: number;
  depth_reached: number;
  duration_ms: number;
  outcome: RunOutcome;
  max_depth: number | null;
  error: string | null;
  seed: string | null;
  walks: number | null;
}

export interface ViolationRow {
  id: number;
  model: string;
  property: string;
  depth: number;
  trace: string;
  final_state: string;
  fingerprint: string;
  detail: string;
  first_run: number;
  last_run: number;
  times_seen: number;
  /** The run whose bounds the stored trace replays under (it found the stored, shortest trace). */
  trace_run: number | null;
  /** The trace this one was shrunk from (newline separated), if shrunk. */
  original_trace: string | null;
  /** JSON: how it was shrunk. */
  shrink: string | null;
}

export interface CoverageRow {
  run_id: number;
  kind: string;
  fired: number;
  new_states: number;
}

export interface OpenOptions {
  /** Fail (StoreError) instead of creating the file when it does not exist. */
  mustExist?: boolean;
  /** How long to wait for another process's write lock (ms). */
  busyTimeoutMs?: number;
}

const isSqliteError = (e: unknown): e is Error & { code: string } =>
  e instanceof Error && typeof (e as { code?: unknown }).code === 'string';

/** Translate a SQLite error on `file` into a one-line StoreError; rethrow anything else. */
function translate(file: string, e: unknown): never {
  if (e instanceof StoreError) throw e;
  if (isSqliteError(e)) {
    const code = e.code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT')
      throw new StoreError(
        `${file} is not a usable mmcheck results database (${e.message}); move it away or pass --db with another path`,
      );
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
      throw new StoreError(
        `${file} is locked by another process; wait for it to finish or pass --db with another path`,
      );
    if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_IOERR'))
      throw new StoreError(`cannot write ${file} (${e.message}); check its permissions or pass --db with another path`);
  }
  throw e;
}

/** Apply the migrations after the database's user_version, each in its own transaction. */
export function migrate(db: Database.Database, upTo: number = SCHEMA_VERSION): number {
  let version = db.pragma('user_version', { simple: true }) as number;
  for (const m of MIGRATIONS) {
    if (m.version <= version || m.version > upTo) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
    version = m.version;
  }
  return version;
}

export class Store {
  private constructor(
    readonly db: Database.Database,
    readonly path: string,
  ) {}

  /** Use openStore(). */
  static open(path: string, opts: OpenOptions = {}): Store {
    const file = resolve(path);
    if (!existsSync(file)) {
      if (opts.mustExist)
        throw new StoreError(`no results database at ${path}; run \`mmcheck check\` first or pass --db`);
      try {
        mkdirSync(dirname(file), { recursive: true });
      } catch (e) {
        throw new StoreError(`cannot create the directory of ${path} (${(e as Error).message}); pass --db with another path`);
      }
    }
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: opts.busyTimeoutMs ?? 5000 });
    } catch (e) {
      translate(path, e);
    }
    try {
      // Reading the header is the first access: a file that is not SQLite fails here.
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION)
        throw new StoreError(
          `${path} has schema version ${version}, newer than this mmcheck supports (${SCHEMA_VERSION}); upgrade mmcheck or pass --db with another path`,
        );
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      // Fail now, in one line, rather than after a long search when the run is recorded.
      db.exec('BEGIN IMMEDIATE; COMMIT');
    } catch (e) {
      db.close();
      translate(path, e);
    }
    return new Store(db, path);
  }

  private guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      translate(this.path, e);
    }
  }

  schemaVersion(): number {
    return this.guard(() => this.db.pragma('user_version', { simple: true }) as number);
  }

  /** Insert a run with outcome 'running'; returns its id. */
  startRun(r: RunStart): number {
    return this.guard(() => {
      const info = this.db
        .prepare(
          `INSERT INTO runs (started_at, command, model, variant, bounds, workers, max_depth, seed, outcome)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running')`,
        )
        .run(
          new Date().toISOString(),
          r.command,
          r.model,
          r.variant,
          JSON.stringify(r.bounds ?? {}),
          r.workers ?? 1,
          r.maxDepth ?? null,
          r.seed ?? null,
        );
      return Number(info.lastInsertRowid);
    });
  }

  /**
   * Finish a run with its counts, violations and coverage in one transaction.
   * A violation already known (same model, property, fingerprint) is not
   * inserted again: its last_run and times_seen are updated, and its trace is
   * replaced when the new one is shorter. Returns the violation ids, in order.
   */
  finishRun(runId: number, f: RunFinish): number[] {
    return this.guard(() =>
      this.db
        .transaction((): number[] => {
          const upd = this.db
            .prepare(
              `UPDATE runs SET finished_at = ?, generated = ?, distinct_states = ?, depth_reached = ?,
                 duration_ms = ?, outcome = ?, error = ?, walks = ? WHERE id = ? AND outcome = 'running'`,
            )
            .run(
              new Date().toISOString(),
              f.generated,
              f.distinct,
              f.depthReached,
              Math.round(f.durationMs),
              f.outcome,
              f.error ?? null,
              f.walks ?? null,
              runId,
            );
          if (upd.changes !== 1) throw new Error(`run ${runId} does not exist or is already finished`);
          const upsert = this.db.prepare(
            `INSERT INTO violations (model, property, depth, trace, final_state, fingerprint, detail, first_run, last_run, times_seen, trace_run, original_trace, shrink)
             VALUES (@model, @property, @depth, @trace, @finalState, @fingerprint, @detail, @run, @run, 1, @run, @originalTrace, @shrink)
             ON CONFLICT (model, property, fingerprint) DO UPDATE SET
               last_run = excluded.last_run,
               times_seen = times_seen + 1,
               trace = CASE WHEN excluded.depth < depth THEN excluded.trace ELSE trace END,
               final_state = CASE WHEN excluded.depth < depth THEN excluded.final_state ELSE final_state END,
               detail = CASE WHEN excluded.depth < depth THEN excluded.detail ELSE detail END,
               trace_run = CASE WHEN excluded.depth < depth THEN excluded.trace_run ELSE trace_run END,
               original_trace = CASE WHEN excluded.depth < depth THEN excluded.original_trace ELSE original_trace END,
               shrink = CASE WHEN excluded.depth < depth THEN excluded.shrink ELSE shrink END,
               depth = MIN(depth, excluded.depth)
             RETURNING id`,
          );
          const link = this.db.prepare(`INSERT OR IGNORE INTO run_violations (run_id, violation_id) VALUES (?, ?)`);
          const ids: number[] = [];
          for (const v of f.violations ?? []) {
            const row = upsert.get({
              model: v.model,
              property: v.property,
              depth: v.depth,
              trace: v.trace.join('\n'),
              finalState: JSON.stringify(v.finalState),
              fingerprint: v.fingerprint,
              detail: v.detail,
              run: runId,
              originalTrace: v.originalTrace ? v.originalTrace.join('\n') : null,
              shrink: v.shrink !== undefined ? JSON.stringify(v.shrink) : null,
            }) as { id: number };
            link.run(runId, row.id);
            ids.push(row.id);
          }
          const cov = this.db.prepare(
            `INSERT OR REPLACE INTO coverage (run_id, kind, fired, new_states) VALUES (?, ?, ?, ?)`,
          );
          for (const [kind, c] of Object.entries(f.coverage ?? {})) cov.run(runId, kind, c.fired, c.newStates);
          return ids;
        })
        .immediate(),
    );
  }

  getRun(id: number): RunRow | undefined {
    return this.guard(() => this.db.prepare(`SELECT * FROM runs WHERE id = ?`).get(id) as RunRow | undefined);
  }

  /** Newest first. */
  listRuns(limit = 20): RunRow[] {
    return this.guard(() => this.db.prepare(`SELECT * FROM runs ORDER BY id DESC LIMIT ?`).all(limit) as RunRow[]);
  }

  getViolation(id: number): ViolationRow | undefined {
    return this.guard(
      () => this.db.prepare(`SELECT * FROM violations WHERE id = ?`).get(id) as ViolationRow | undefined,
    );
  }

  /** Most recently seen first. */
  listViolations(limit = 20): ViolationRow[] {
    return this.guard(
      () =>
        this.db.prepare(`SELECT * FROM violations ORDER BY last_run DESC, id DESC LIMIT ?`).all(limit) as ViolationRow[],
    );
  }

  /** The violations a run found (new or seen again). */
  runViolations(runId: number): ViolationRow[] {
    return this.guard(
      () =>
        this.db
          .prepare(
            `SELECT v.* FROM violations v JOIN run_violations rv ON rv.violation_id = v.id WHERE rv.run_id = ? ORDER BY v.id`,
          )
          .all(runId) as ViolationRow[],
    );
  }

  coverage(runId: number): CoverageRow[] {
    return this.guard(
      () => this.db.prepare(`SELECT * FROM coverage WHERE run_id = ? ORDER BY kind`).all(runId) as CoverageRow[],
    );
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/**
 * Open (creating and migrating when needed) the results database at `path`.
 * Throws StoreError, in one line naming the file and the fix, when the file
 * is not SQLite, has a newer schema, or is locked.
 */
export function openStore(path: string = DEFAULT_DB_PATH, opts: OpenOptions = {}): Store {
  return Store.open(path, opts);
}
