// The level-synchronous BFS driver shared by the thread pool
// (src/engine/parallel.ts) and the Redis coordinator
// (src/engine/distributed.ts): both keep the visited set, the parent links
// and the frontier here, and differ only in how a level's batches are
// expanded (a LevelExpander). This module owns what must be the same for
// both so that their results are the single-thread explorer's:
//   - the start (a fresh root, or a checkpoint's level boundary) and the
//     checkpoints, written at level boundaries only;
//   - the merge in frontier order: the first candidate in batch order to
//     bring a fingerprint (smallest parent position, then first action) is
//     the one the single-thread BFS records, whoever expanded its batch;
//   - the counts (successors generated and fired per kind: all of a level,
//     or at a violation those the single-thread BFS generated before
//     stopping), the memory bound, the stop, the progress, the result.
// The merge itself is src/engine/levelmerge.ts: with the thread pool's level
// table it runs while the level is being expanded. The visited set and the
// frontier change only between levels, and a stop inside a level rolls back
// what it merged, so the last level boundary stays intact for a checkpoint
// (src/engine/checkpoint.ts).
import { checkProperties, ParseError, type Model, type Violation } from './model.ts';
import { fingerprintInto } from './hash.ts';
import { VisitedSet } from './visited.ts';
import { ParentLinks } from './parents.ts';
import type { ExpandResult, TransitionViolation } from './expand.ts';
import { LevelMerge, type Owns } from './levelmerge.ts';
import { packState, PackedList } from './pack.ts';
import { searchResult, type ExploreOptions, type ExploreResult, type Found, type Outcome, type Progress } from './explorer.ts';
import { writeCheckpoint, type Checkpoint } from './checkpoint.ts';
import { KindCounters, recordViolations } from './coverage.ts';

export interface LevelOptions<S> extends ExploreOptions<S> {
  /** Stop cleanly (outcome 'interrupted', `memoryLimit` set) before the process's resident memory passes this. */
  maxMemoryMb?: number;
  /** Write a checkpoint at level boundaries at most every `everyMs`, and when the search stops at one. */
  checkpoint?: { path: string; everyMs: number; meta: unknown };
  /** Continue from this checkpoint (its model, bounds and from-state must be this run's). */
  resume?: Checkpoint;
}

export interface Frontier {
  bytes: Uint8Array;
  offsets: Uint32Array;
  length: number;
}

/**
 * One expanded batch of consecutive frontier states, as the merge reads it:
 * ExpandResult's candidates, with the successors generated counted per kind.
 */
export interface LevelBatch {
  /** Per candidate: parent's level position, action index, fingerprint hi, lo, kind index (CAND_WORDS). */
  cand: Int32Array;
  bytes: Uint8Array;
  offsets: Uint32Array;
  violations: { c: number; vs: Violation[] }[];
  /** Transitions that violate a transition property, in generation order (ExpandResult's). */
  transitions: TransitionViolation[];
  kindNames: string[];
  /** Successors generated per kind (index into kindNames). */
  fired: number[];
  /** Only when the batch has violations (a stop at the first violation counts up to it): ExpandResult's counts and kinds. */
  counts?: Int32Array;
  kinds?: Uint16Array;
}

/** An ExpandResult as the merge needs it: per-kind counts, and the per-successor kinds only where a stop may cut the batch. */
export function levelBatch(res: ExpandResult): LevelBatch {
  const fired = new Array<number>(res.kindNames.length).fill(0);
  for (let i = 0; i < res.kinds.length; i++) fired[res.kinds[i]!]!++;
  return {
    cand: res.cand,
    bytes: res.bytes,
    offsets: res.offsets,
    violations: res.violations,
    transitions: res.transitions,
    kindNames: res.kindNames,
    fired,
    ...(res.violations.length > 0 || res.transitions.length > 0 ? { counts: res.counts, kinds: res.kinds } : {}),
  };
}

/** What an expander sees of the search at a level boundary. */
export interface LevelView {
  /** Levels expanded so far (the frontier is this level). */
  level: number;
  frontier: Frontier;
  /** Fingerprints of every earlier level (not written during a level). */
  visited: VisitedSet;
  /** Properties still to check (--continue), or undefined: all. */
  check: string[] | undefined;
  stopAtFirst: boolean;
  /** Size of the level before this one (for sizing tables). */
  lastLevelSize: number;
  /**
   * false when the level's successors will never be expanded (the last
   * level, and no checkpoint to resume deeper from): they need not be packed.
   */
  keep: boolean;
  /** Call between batches: 'stop' (shouldStop), 'memory' (over the bound), or undefined; reports progress when due. */
  poll(levelGenerated: number, queue: number): 'stop' | 'memory' | undefined;
  /**
   * Before the first delivery: the frontier is cut into `batches` batches of
   * `size` consecutive states (the last may have fewer). `owns`: whether the
   * candidate at parent position pos owns its fingerprint, from a level
   * table that knows the owners; with it, batches are merged as they
   * arrive. Without it, the first candidate in batch order to bring a
   * fingerprint owns it, and the merge waits for the whole level.
   */
  begin(batches: number, size: number, owns?: Owns): void;
  /** Batch b is expanded (batches may arrive in any order). */
  deliver(b: number, batch: LevelBatch): void;
  /** Batches still needed: fewer than all once the merge stopped at a violation (stopping at the first). */
  needed(): number;
}

export interface LevelExpander {
  /** Expand the frontier, delivering every needed batch; or why it stopped ('stop', 'memory': the partial level is dropped). */
  expand(view: LevelView): Promise<'stop' | 'memory' | undefined>;
  /** The new states of the level just merged, as fingerprint pairs (hi, lo), in index order (for replicas of the visited set). */
  merged?(fresh: Uint32Array): void;
}

export interface LevelResult<A, S> extends ExploreResult<A, S> {
  /** Why the search stopped at the memory bound (outcome 'interrupted'). */
  memoryLimit?: string;
  /** The checkpoint written last, if any. */
  checkpoint?: string;
  /** Levels expanded when the last checkpoint was written. */
  checkpointLevel?: number;
  /** Peak resident memory of the process, sampled between batches. */
  peakRssMb: number;
  /** Successors the expanders sent back: the new states, and the duplicates that raced with them. */
  sent: number;
}

const rssMb = (): number => process.memoryUsage.rss() / 2 ** 20;

/**
 * A level-synchronous search, from its start (checked and set up by
 * `start`, before the caller acquires workers) to its result (`run`).
 */
export class LevelSearch<S, A> {
  private readonly t0 = performance.now();
  private lastProgress = this.t0;
  private peakRss = rssMb();
  private readonly root: S;
  private readonly counters: KindCounters;
  private readonly stopAtFirst: boolean;
  private readonly fromPrefix: number;
  private readonly maxLevels: number;
  private visited: VisitedSet;
  private links: ParentLinks;
  private levelSizes: number[];
  private generated: number;
  private level: number;
  private levelStart: number;
  private found: Found[];
  private remaining: Set<string> | undefined;
  private frontier: Frontier;
  private elapsedBefore = 0;
  private outcome: Outcome | undefined;
  private memoryLimit: string | undefined;
  private checkpointPath: string | undefined;
  private checkpointLevel: number | undefined;
  private lastCheckpoint = performance.now();

  /**
   * Check the options (ParseError) and set up the first level boundary.
   * `sharedVisited`: the visited set in SharedArrayBuffers, for expanders
   * that read it from other threads.
   */
  constructor(
    private readonly model: Model<S, A>,
    private readonly options: LevelOptions<S>,
    sharedVisited: boolean,
  ) {
    const { depth, resume } = options;
    this.stopAtFirst = resume ? resume.stopAtFirst : (options.stopAtFirst ?? true);
    const fromPrefix = (this.fromPrefix = resume ? resume.fromPrefix : (options.fromPrefix ?? 0));
    if (!Number.isInteger(depth) || depth < 0) throw new ParseError(`depth must be a non-negative integer, got ${depth}`);
    if (!Number.isInteger(fromPrefix) || fromPrefix < 0 || fromPrefix > depth) {
      throw new ParseError(`the --from prefix has ${fromPrefix} actions, more than the depth ${depth}; raise --depth`);
    }
    if (resume && fromPrefix + resume.level > depth) {
      throw new ParseError(`the checkpoint is at depth ${fromPrefix + resume.level}, deeper than --depth ${depth}; raise --depth`);
    }
    this.maxLevels = depth - fromPrefix;
    this.root = options.from ?? model.initial();
    this.counters = new KindCounters(model.actionKinds);
    if (resume) {
      this.visited = VisitedSet.fromKeys(resume.keys, resume.visitedSize, sharedVisited);
      this.links = new ParentLinks(Math.max(resume.parent.length, options.initialCapacity ?? 1 << 16));
      for (let i = 0; i < resume.parent.length; i++) this.links.push(resume.parent[i]!, resume.step[i]!);
      this.levelSizes = [...resume.levelSizes];
      this.generated = resume.generated;
      this.level = resume.level;
      this.levelStart = resume.levelStart;
      this.found = [...resume.found];
      this.remaining = resume.remaining ? new Set(resume.remaining) : undefined;
      this.frontier = { bytes: resume.frontierBytes, offsets: resume.frontierOffsets, length: resume.frontierOffsets.length - 1 };
      this.elapsedBefore = resume.elapsedMs;
      for (const [kind, c] of Object.entries(resume.coverage)) {
        const k = this.counters.slotOf(kind);
        this.counters.fired[k] = c.fired;
        this.counters.produced[k] = c.newStates;
      }
    } else {
      this.visited = new VisitedSet(options.initialCapacity, sharedVisited);
      this.links = new ParentLinks(options.initialCapacity);
      this.found = [];
      this.remaining = this.stopAtFirst ? undefined : new Set(model.properties.map((p) => p.id));
      const fp = new Uint32Array(2);
      fingerprintInto(model.encode(this.root), fp);
      this.visited.insert(fp[0]!, fp[1]!);
      this.links.push(-1, -1);
      this.levelSizes = [1];
      this.generated = 0;
      this.level = 0;
      this.levelStart = 0;
      const first = new PackedList();
      first.push(packState(model, this.root));
      this.frontier = { ...first.compact(), length: 1 };
      if (this.record(checkProperties(model, this.root, this.remaining), 0, 0, fp[0]!, fp[1]!) && this.stopAtFirst) this.outcome = 'violation';
    }
  }

  /** Record a state's violations, or a transition's (action: its position in the actions of state `index`). */
  private record(vs: readonly Violation[], level: number, index: number, hi: number, lo: number, action?: number): boolean {
    return recordViolations(this.found, this.remaining, vs, { level, index, hi: hi >>> 0, lo: lo >>> 0, ...(action !== undefined ? { action } : {}) });
  }

  private checkpointNow(): void {
    const c = this.options.checkpoint;
    if (!c) return;
    const { frontier, visited, links } = this;
    writeCheckpoint(c.path, {
      meta: c.meta,
      stopAtFirst: this.stopAtFirst,
      fromPrefix: this.fromPrefix,
      level: this.level,
      levelStart: this.levelStart,
      levelSizes: this.levelSizes,
      generated: this.generated,
      coverage: this.counters.coverage(),
      found: this.found,
      remaining: this.remaining ? [...this.remaining] : null,
      elapsedMs: this.elapsedBefore + (performance.now() - this.t0),
      visitedSize: visited.size,
      keys: visited.keys,
      parent: links.parent.subarray(0, links.length),
      step: links.step.subarray(0, links.length),
      frontierBytes: frontier.bytes.subarray(0, frontier.offsets[frontier.length]!),
      frontierOffsets: frontier.offsets.subarray(0, frontier.length + 1),
    });
    this.checkpointPath = c.path;
    this.checkpointLevel = this.level;
    this.lastCheckpoint = performance.now();
  }

  private overMemory(extraBytes = 0): boolean {
    const rss = rssMb();
    if (rss > this.peakRss) this.peakRss = rss;
    const max = this.options.maxMemoryMb;
    if (max === undefined || rss + extraBytes / 2 ** 20 <= max) return false;
    this.memoryLimit = `memory limit of ${max} MB reached (${Math.round(rss + extraBytes / 2 ** 20)} MB needed) at depth ${this.fromPrefix + this.level}`;
    return true;
  }

  private poll(levelGenerated: number, queue: number): 'stop' | 'memory' | undefined {
    const { shouldStop, onProgress } = this.options;
    if (shouldStop?.()) return 'stop';
    if (this.overMemory()) return 'memory';
    if (onProgress) {
      const now = performance.now();
      if (now - this.lastProgress >= (this.options.progressMs ?? 3000)) {
        this.lastProgress = now;
        const elapsedMs = now - this.t0;
        const session = this.generated + levelGenerated - (this.options.resume?.generated ?? 0);
        onProgress({
          depth: this.fromPrefix + this.level,
          generated: this.generated + levelGenerated,
          distinct: this.visited.size,
          queue,
          statesPerSec: elapsedMs > 0 ? (session * 1000) / elapsedMs : 0,
          elapsedMs,
          heapMb: rssMb(),
        } satisfies Progress);
      }
    }
    return undefined;
  }

  /** The visited set's fingerprints as (hi, lo) pairs, for an expander that replicates it. */
  visitedPairs(): Uint32Array {
    const keys = this.visited.keys;
    const out = new Uint32Array(this.visited.size * 2);
    let n = 0;
    for (let s = 0; s < keys.length; s += 2) {
      if (keys[s] === 0 && keys[s + 1] === 0) continue;
      out[n++] = keys[s]!;
      out[n++] = keys[s + 1]!;
    }
    return out.subarray(0, n);
  }

  /** Expand level after level with `expander` until the depth, a violation (stopping at the first), a stop or the memory bound. */
  async run(expander: LevelExpander): Promise<LevelResult<A, S>> {
    const { options, counters } = this;
    // Set when the search ended at a level boundary with a frontier left to expand: worth a checkpoint.
    let resumable = false;
    let exhausted = false;
    let sent = 0;
    let merge: LevelMerge | undefined;
    const into = {
      links: this.links,
      found: this.found,
      remaining: this.remaining,
      counters,
      stopAtFirst: this.stopAtFirst,
      record: (vs: readonly Violation[], level: number, index: number, hi: number, lo: number, action?: number) => this.record(vs, level, index, hi, lo, action),
    };
    const view: LevelView = {
      level: 0,
      frontier: this.frontier,
      visited: this.visited,
      check: undefined,
      stopAtFirst: this.stopAtFirst,
      lastLevelSize: 0,
      keep: true,
      poll: (g, q) => this.poll(g, q),
      begin: (batches, size, owns) => {
        const n = this.frontier.length;
        // The next frontier is first sized by the last level's growth.
        const growth = this.levelSizes.length >= 2 ? this.levelSizes.at(-1)! / Math.max(1, this.levelSizes.at(-2)!) : 4;
        const expected = Math.ceil(n * Math.min(8, growth) * 1.1);
        const bytes = view.keep ? Math.ceil((this.frontier.offsets[n]! / n) * expected) : 0;
        merge = new LevelMerge(into, this.levelStart, this.level, batches, size, owns, bytes, expected);
      },
      deliver: (b, batch) => merge!.deliver(b, batch),
      needed: () => merge!.needed,
    };
    while (this.outcome === undefined) {
      if (this.level >= this.maxLevels) {
        this.outcome = 'depth-reached';
        resumable = true;
        break;
      }
      if (options.checkpoint && performance.now() - this.lastCheckpoint >= options.checkpoint.everyMs) this.checkpointNow();
      if (options.shouldStop?.() || this.overMemory()) {
        this.outcome = 'interrupted';
        resumable = true;
        break;
      }
      const n = this.frontier.length;
      view.level = this.level;
      view.frontier = this.frontier;
      view.visited = this.visited;
      view.check = this.remaining ? [...this.remaining] : undefined;
      view.lastLevelSize = this.levelSizes.at(-1)!;
      view.keep = this.level + 1 < this.maxLevels || options.checkpoint !== undefined;
      merge = undefined;
      const stopped = await expander.expand(view);
      const m = merge as LevelMerge | undefined;
      // The visited set must take the level's new states: the bound is checked before they go in.
      if (stopped !== undefined || m === undefined || this.overMemory(m.visitedGrowth(this.visited))) {
        if (stopped === undefined && m === undefined) throw new Error('level search: the expander delivered nothing (begin was never called)');
        // The partial level is dropped: everything is as at the level boundary.
        m?.rollback();
        this.outcome = 'interrupted';
        resumable = true;
        break;
      }
      m.complete(this.visited);
      this.generated += m.generated;
      sent += m.sent;
      const next = m.next;
      if (m.stopped) {
        this.levelSizes.push(next.length);
        this.outcome = 'violation';
        break;
      }
      expander.merged?.(m.fresh());
      this.levelStart += n;
      this.level++;
      this.frontier = next;
      if (next.length === 0) {
        exhausted = true;
        this.outcome = 'complete';
        break;
      }
      this.levelSizes.push(next.length);
    }
    if (resumable && options.checkpoint) this.checkpointNow();
    let outcome = this.outcome!;
    if (outcome !== 'interrupted' && this.found.length > 0) outcome = 'violation';
    const { model, root, links, found, fromPrefix, t0, generated, levelSizes, visited } = this;
    return {
      ...searchResult({ model, root, links, found, fromPrefix, t0, outcome, exhausted, generated, generatedBefore: options.resume?.generated ?? 0, levelSizes, counters, visited }),
      ...(this.memoryLimit !== undefined ? { memoryLimit: this.memoryLimit } : {}),
      ...(this.checkpointPath !== undefined ? { checkpoint: this.checkpointPath, checkpointLevel: this.checkpointLevel! } : {}),
      peakRssMb: this.peakRss,
      sent,
    };
  }
}
