// Shared by the commands: exit codes, errors, option parsing, reading
// operations, building the model, and output helpers.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { PICTURE_FORMATS, renderTracePicture, type PictureFormat, type TracePicture } from '../report/picture.ts';
import { ParseError, type Model, type Violation } from '../engine/model.ts';
import { createMmModel, DEFAULT_BOUNDS, type MmModelOptions } from '../../models/mm/model.ts';
import { disabledLockPoints } from '../../models/mm/sched.ts';
import { ALL_PROPERTIES } from '../../properties/index.ts';
import { isVariantFile, loadModel, VariantError } from '../../models/variants/load.ts';
import { DEFAULT_DB_PATH } from '../store/db.ts';
import { OP_KINDS, splitOps, traceExtent } from '../../models/mm/ops.ts';
import { MAX_THREADS, type State } from '../../models/mm/state.ts';

/** Depth of `mmcheck check` without --depth (and of `npm start`): must finish in under a minute. */
export const DEFAULT_CHECK_DEPTH = 4;
/** simulate's longest walk, in operations. */
export const DEFAULT_WALK_DEPTH = 40;
/** Seconds of exhaustive search for a shorter violation after shrinking. */
export const DEFAULT_EXHAUSTIVE_S = 30;
/** Interval of progress lines and events. */
export const PROGRESS_MS = 3000;

export const EXIT = { ok: 0, violation: 1, badInput: 2, internal: 3, interrupted: 130 } as const;

export type MmModel = ReturnType<typeof createMmModel>;
export type Bounds = typeof DEFAULT_BOUNDS;
export type Op = MmModel extends Model<State, infer A> ? A : never;

/** Bad input found before anything is written: one line, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A stored violation that the current model no longer reproduces, or a resource limit: exit 3. */
export class ResultError extends Error {
  override name = 'ResultError';
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- options

export interface BoundOptions {
  procs?: string;
  pages?: string;
  maxLen?: string;
  ops?: string;
  enomem?: string;
  largeFolios?: boolean;
  relocate?: boolean;
  granularity?: string;
  walkers?: string;
  threads?: string;
  /** commander's --no-reduce: false when given. */
  reduce?: boolean;
  /** --por (check and gate). */
  por?: boolean;
}

export function parseCount(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  // A negative number is a number, just too small: say so (issue 14).
  if (/^-\d+$/.test(text.trim())) throw new UsageError(`--${name} must be at least ${min}, got ${text.trim()}`);
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--${name} must be a whole number, got "${text}"`);
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be at least ${min}, got ${text}`);
  return n;
}

export function knownKinds(): string[] {
  return [...OP_KINDS];
}

/** The bounds given on the command line, checked against each other and the defaults. */
export function parseBounds(o: BoundOptions): { given: Partial<Bounds>; bounds: Bounds } {
  const given: Partial<Bounds> = {};
  const procs = parseCount('procs', o.procs, 1);
  const pages = parseCount('pages', o.pages, 1);
  const maxLen = parseCount('max-len', o.maxLen, 1);
  const enomem = parseCount('enomem', o.enomem, 0);
  if (procs !== undefined) given.procs = procs;
  if (pages !== undefined) given.pages = pages;
  if (maxLen !== undefined) given.maxLen = maxLen;
  if (enomem !== undefined) given.enomem = enomem;
  if (o.largeFolios) given.largeFolios = true;
  if (o.relocate) given.relocate = true;
  if (o.granularity !== undefined) {
    if (o.granularity !== 'syscall' && o.granularity !== 'lock') throw new UsageError(`--granularity must be syscall or lock, got "${o.granularity}"`);
    given.granularity = o.granularity;
  }
  const walkers = parseCount('walkers', o.walkers, 0);
  if (walkers !== undefined) given.walkers = walkers;
  const threads = parseCount('threads', o.threads, 1);
  if (threads !== undefined) {
    if (threads > MAX_THREADS) throw new UsageError(`--threads must be at most ${MAX_THREADS}, got ${threads}`);
    given.threads = threads;
  }
  if (o.reduce === false) given.reduce = false;
  if (o.por === true) given.por = true;
  if (given.granularity !== 'lock' && (walkers !== undefined || threads !== undefined || o.reduce === false || o.por === true))
    throw new UsageError(`--walkers, --threads, --no-reduce and --por need --granularity lock`);
  if (o.ops !== undefined) {
    const ops = o.ops
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== '');
    const known = knownKinds();
    const unknown = ops.filter((k) => !known.includes(k));
    if (unknown.length > 0)
      throw new UsageError(`--ops: unknown syscall ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${known.join(', ')})`);
    if (ops.length === 0) throw new UsageError(`--ops must name at least one syscall (known: ${known.join(', ')})`);
    given.ops = [...new Set(ops)] as Bounds['ops'];
  }
  const bounds: Bounds = { ...DEFAULT_BOUNDS, ...given };
  if (bounds.maxLen > bounds.pages)
    throw new UsageError(`--max-len ${bounds.maxLen} is larger than --pages ${bounds.pages}; lower --max-len or raise --pages`);
  return { given, bounds };
}

/**
 * The bounds a concrete trace needs (`run`, `replay`): processes (one plus
 * its forks), pages up to the highest it touches, the longest length, its
 * ENOMEM injections and walkers, and lock granularity when it steps threads
 * or starts walkers. Exploration bounds limit what `check` enumerates; they
 * must not refuse an operation written out by hand (issue 14).
 */
export function traceBounds(texts: readonly string[]): Partial<Bounds> {
  const e = traceExtent(texts);
  return { procs: e.procs, pages: e.pages, maxLen: e.maxLen, enomem: e.enomem, walkers: e.walkers, threads: e.threads, ...(e.lock ? { granularity: 'lock' as const } : {}) };
}

/** `bounds` raised to what `texts` need: a trace is never refused for a bound. */
export function boundsFor(bounds: Partial<Bounds>, texts: readonly string[]): Partial<Bounds> {
  const need = traceBounds(texts);
  const b = { ...DEFAULT_BOUNDS, ...bounds };
  return {
    ...bounds,
    procs: Math.max(b.procs, need.procs!),
    pages: Math.max(b.pages, need.pages!),
    maxLen: Math.max(b.maxLen, need.maxLen!),
    enomem: Math.max(b.enomem, need.enomem!),
    threads: Math.max(b.threads, need.threads!),
    ...(need.granularity === 'lock' || b.granularity === 'lock' ? { granularity: 'lock' as const, walkers: Math.max(b.walkers, need.walkers!) } : {}),
  };
}

/** --properties a,b: known property ids; undefined when not given. */
export function parsePropertyList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const ids = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const known = ALL_PROPERTIES.map((p) => p.id);
  const unknown = ids.filter((p) => !known.includes(p));
  if (unknown.length > 0) throw new UsageError(`--properties: unknown property ${unknown.map((p) => `"${p}"`).join(', ')} (see mmcheck properties)`);
  if (ids.length === 0) throw new UsageError('--properties must name at least one property (see mmcheck properties)');
  return [...new Set(ids)];
}

/** Build the model from --model (a built-in name or a variant file); a broken variant is bad input. */
/** Model options a command may set besides the variant, bounds and properties. */
export type ModelOptions = Pick<MmModelOptions, 'search' | 'checkImmutability'>;

export async function makeModel(spec: string, bounds: Partial<Bounds>, only?: readonly string[], options: ModelOptions = {}): Promise<MmModel> {
  try {
    await typeScriptFor(spec);
    const loaded = await loadModel(spec);
    const properties = only === undefined ? undefined : ALL_PROPERTIES.filter((p) => only.includes(p.id));
    return createMmModel({ name: loaded.name, kernel: loaded.kernel, bounds, ...(properties ? { properties } : {}), ...options });
  } catch (e) {
    if (e instanceof ParseError || e instanceof UsageError || e instanceof VariantError) throw new UsageError(e.message);
    throw e;
  }
}

/**
 * One line when the model's variant replaces a function above a lock point
 * (models/mm/sched.ts): at lock granularity its path then runs as one step,
 * so races inside it are not explored. undefined when nothing is turned off.
 */
export function lockPointNote(model: MmModel): string | undefined {
  if (model.bounds.granularity !== 'lock') return undefined;
  const { functions, lockPoints } = disabledLockPoints(model.kernel);
  if (functions.length === 0) return undefined;
  return `note: ${model.name} replaces ${functions.join(', ')}; at lock granularity its path runs without mainline's lock points ${lockPoints.join(', ')}, so nothing interleaves there`;
}

/** Running compiled (dist/, see bin/mmcheck.js) rather than from the TypeScript sources. */
export const COMPILED = import.meta.url.endsWith('.js');

/**
 * The compiled program has no TypeScript loader (registering one costs a
 * second at start): register it, in this thread, before loading a variant
 * file (written in TypeScript, or importing the model's .ts sources). Each worker thread loads the model through
 * here too.
 */
export async function typeScriptFor(spec: string): Promise<void> {
  // A .js variant may import the model's .ts sources too.
  if (!COMPILED || !isVariantFile(spec)) return;
  const bin = '../../../bin/typescript.mjs'; // from dist/src/cli/common.js
  await ((await import(bin)) as { registerTypeScript(): Promise<void> }).registerTypeScript();
}

/** Operations from text or from a file (whichever `arg` names). */
export function readOps(arg: string, what: string): string[] {
  let text = arg;
  // One word that looks like a path but names no file: say so rather than "unknown process".
  if (!existsSync(arg) && !/\s/.test(arg.trim()) && /[\/\\]|\.[A-Za-z]+$/.test(arg))
    throw new UsageError(`${what} ${arg}: no such file (give operations like "P0 mmap 0 4; P0 fault 1 w", or a file)`);
  if (existsSync(arg) && statSync(arg).isFile()) {
    try {
      text = readFileSync(arg, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${what} ${arg}: ${(e as Error).message}`);
    }
  }
  return splitOps(text);
}

export function readFileOps(path: string): string[] {
  try {
    return splitOps(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read --file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

// ---------------------------------------------------------------- output helpers

export function boundsText(b: Bounds): string {
  const lock = b.granularity === 'lock' ? `, granularity lock, walkers ${b.walkers}${b.threads > 1 ? `, threads ${b.threads}` : ''}${b.reduce ? '' : ', no reduction'}${b.por ? ', partial-order reduction' : ''}` : '';
  const extra = `${b.largeFolios ? ', large folios' : ''}${b.relocate ? ', relocate' : ''}`;
  return `procs ${b.procs}, pages ${b.pages}, max-len ${b.maxLen}, ops ${b.ops.join(',')}, enomem ${b.enomem}${extra}${lock}`;
}

export const out = (line = ''): void => {
  process.stdout.write(line + '\n');
};
export const err = (line: string): void => {
  process.stderr.write(line + '\n');
};
export const event = (o: Record<string, unknown>): void => out(JSON.stringify(o));
export const num = (n: number): string => Math.round(n).toLocaleString('en-US');
export const indent = (text: string, by = '  '): string =>
  text
    .split('\n')
    .map((l) => (l === '' ? l : by + l))
    .join('\n');

export function violationLines(vs: readonly Violation[]): string[] {
  return vs.map((v) => `VIOLATION ${v.property}: ${v.detail}`);
}

// ---------------------------------------------------------------- pictures

export interface PictureOptions {
  out?: string;
  step?: string;
}

export const isPictureFormat = (f: string): f is PictureFormat => (PICTURE_FORMATS as readonly string[]).includes(f);

/** Validate --format (one of `textual` or a picture format), --out and --step; returns the step. */
export function checkPictureOptions(o: PictureOptions & { format: string }, textual: readonly string[]): number | undefined {
  const all = [...textual, ...PICTURE_FORMATS];
  if (!all.includes(o.format)) throw new UsageError(`--format must be one of ${all.join(', ')}, got "${o.format}"`);
  if (o.out !== undefined && !isPictureFormat(o.format)) throw new UsageError(`--out goes with --format ${PICTURE_FORMATS.join('|')}`);
  if (o.step !== undefined && (o.format === 'html' || !isPictureFormat(o.format))) throw new UsageError('--step goes with --format dot or svg');
  return parseCount('step', o.step, 0);
}

/** Render a trace picture to --out, or to stdout. */
export async function writePicture(o: PictureOptions & { format: string }, t: TracePicture): Promise<void> {
  let text: string;
  try {
    text = await renderTracePicture(o.format as PictureFormat, t);
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
  if (o.out === undefined) process.stdout.write(text);
  else {
    try {
      writeFileSync(o.out, text);
    } catch (e) {
      throw new UsageError(`cannot write --out ${o.out}: ${(e as Error).message}`);
    }
    err(`wrote ${o.out}`);
  }
}

/** A stored violation's trace, numbered, and how to replay it. */
export function traceLines(trace: readonly string[], violationId: number, db: string): string[] {
  return ['  trace:', ...trace.map((t, k) => `    ${k + 1}. ${t}`), `  replay: mmcheck replay ${violationId}${db === DEFAULT_DB_PATH ? '' : ` --db ${db}`}`];
}
