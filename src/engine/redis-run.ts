// Runs on Redis (DESIGN.md §5, issue 16): what a coordinator and the
// `mmcheck worker` processes share whatever the run computes. The
// coordinator publishes a run (a descriptor of data only, refreshed while it
// lives) and a BullMQ queue of jobs; a worker discovers the runs, accepts
// those whose model it has byte for byte (the caller's `accept`), and serves
// each accepted run's queue with the job handler that its kind of work
// brings (exhaustive levels: src/engine/distributed.ts; random walks:
// src/engine/simulate-redis.ts) on a piscina pool of its own.
//
// Workers never receive code: the descriptor carries the model's name or
// variant path, its bounds, the properties, the coordinator's mmcheck
// version and content hashes; the worker resolves the model locally and
// refuses the run when the version or its own hashes differ.
//
// Redis keys (prefix `mmcheck:`; the BullMQ queues under `mmcheck:bull:`):
//   runs                      set of run keys in progress
//   run:<key>                 the descriptor (JSON)
//   run:<key>:alive           refreshed by the coordinator, expires 8 s after it dies
//   run:<key>:refused         hash: worker id -> why it refused the run
//   run:<key>:...             the kind's own keys (removed with the run)
//   worker:<id>               a worker's heartbeat (JSON, expires in 10 s)
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Piscina } from 'piscina';
import { Queue, QueueEvents, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { DistributedError, RedisLink, redactUrls, type RedisTarget } from './redis.ts';

const PREFIX = 'mmcheck:';
const BULL_PREFIX = 'mmcheck:bull';
const ALIVE_MS = 8_000;
/** Connection errors are the link watchdog's to report (it waits LOST_MS); other errors end the run. */
const CONNECTION_ERROR = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|connect/i;

/** Who runs the code: compared by a worker before it serves a run. */
export interface Identity {
  version: string;
  /** Content hashes of the code that defines the model's transitions and checks, by group. */
  hashes: Record<string, string>;
}

/** What the coordinator publishes about a run: data only, never code. */
export interface RunDescriptor {
  key: string;
  queue: string;
  /** What the workers compute: 'explore' (levels of the exhaustive search) or 'simulate' (random walks). */
  kind: string;
  /** The caller's description of the model (e.g. variant name or path, bounds, properties) and of the work. */
  spec: unknown;
  identity: Identity;
  host: string;
}

export const runKeyOf = (key: string, rest = ''): string => `${PREFIX}run:${key}${rest}`;

function connectionOptions(target: RedisTarget): ConnectionOptions {
  return { ...target.options } as ConnectionOptions;
}

/** Delete the keys of a run (and its queue) that is over or whose coordinator died. */
async function dropRun(link: RedisLink, key: string, queue: string): Promise<void> {
  const r = link.redis;
  await r.srem(`${PREFIX}runs`, key);
  for (const pattern of [`${runKeyOf(key)}*`, `${BULL_PREFIX}:${queue}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.unlink(...keys);
    } while (cursor !== '0');
  }
}

/** Runs whose coordinator stopped refreshing them (killed): their keys are removed. */
async function dropDeadRuns(link: RedisLink): Promise<void> {
  for (const key of await link.redis.smembers(`${PREFIX}runs`)) {
    if ((await link.redis.exists(runKeyOf(key, ':alive'))) === 0) await dropRun(link, key, `run-${key}`);
  }
}

// ------------------------------------------------------------------ coordinator

export interface RunOptions {
  target: RedisTarget;
  kind: string;
  spec: unknown;
  identity: Identity;
  /** Messages for the user (workers refusing the run, waiting for workers); redacted here. */
  onNote?(message: string): void;
}

/** A job's end, as the coordinator hears it. */
export interface JobEvents {
  completed?(jobId: string, returnvalue: unknown): void;
  failed?(jobId: string, why: string): void;
}

/**
 * The coordinator's side of one run: the link, the published descriptor,
 * the queue and its events, the workers seen. `close` removes every key of
 * the run (bounded in time: Redis may be gone).
 */
export class RedisRun {
  readonly key = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  readonly queueName = `run-${this.key}`;
  readonly queue: Queue;
  readonly events: QueueEvents;
  /** Bytes the coordinator wrote to Redis and read back (the kind's payload; BullMQ's own traffic not included). */
  bytesOut = 0;
  bytesIn = 0;
  /** Jobs BullMQ found stalled (their worker died or hung) and moved back to be run again. */
  redone = 0;
  /** Worker processes seen serving the run (their heartbeats). */
  readonly seenWorkers = new Set<string>();
  /** Where job events go (one listener at a time: the current phase of the run). */
  on: JobEvents = {};
  private readonly refusals = new Set<string>();
  private aliveTimer: NodeJS.Timeout | undefined;
  private lastNote = performance.now();

  private constructor(
    readonly link: RedisLink,
    private readonly o: RunOptions,
  ) {
    const connection = connectionOptions(o.target);
    this.queue = new Queue(this.queueName, { connection, prefix: BULL_PREFIX });
    this.events = new QueueEvents(this.queueName, { connection, prefix: BULL_PREFIX });
  }

  /** Connect (DistributedError within seconds when Redis is unreachable) and publish the run. */
  static async open(o: RunOptions): Promise<RedisRun> {
    const link = await RedisLink.open(o.target);
    const run = new RedisRun(link, o);
    try {
      await run.publish();
    } catch (e) {
      await run.close();
      throw e;
    }
    return run;
  }

  get redis(): RedisLink['redis'] {
    return this.link.redis;
  }

  note(m: string): void {
    this.o.onNote?.(redactUrls(m));
  }

  private async publish(): Promise<void> {
    const { link, key } = this;
    const r = link.redis;
    await link.guard(dropDeadRuns(link));
    const descriptor: RunDescriptor = { key, queue: this.queueName, kind: this.o.kind, spec: this.o.spec, identity: this.o.identity, host: hostname() };
    await link.guard(r.set(runKeyOf(key, ':alive'), '1', 'PX', ALIVE_MS));
    await link.guard(r.set(runKeyOf(key), JSON.stringify(descriptor)));
    await link.guard(r.sadd(`${PREFIX}runs`, key));
    this.aliveTimer = setInterval(() => void r.set(runKeyOf(key, ':alive'), '1', 'PX', ALIVE_MS).catch(() => {}), 2000);
    this.aliveTimer.unref();
    const onBullError = (e: Error): void => {
      if (!CONNECTION_ERROR.test(e.message)) link.abort(`Redis error: ${e.message}`);
    };
    this.queue.on('error', onBullError);
    this.events.on('error', onBullError);
    this.events.on('completed', ({ jobId, returnvalue }) => this.on.completed?.(jobId, returnvalue));
    this.events.on('failed', ({ jobId, failedReason }) => this.on.failed?.(jobId, failedReason));
    this.events.on('stalled', () => this.redone++);
    await link.guard(Promise.all([this.queue.waitUntilReady(), this.events.waitUntilReady()]));
  }

  /** Every few hundred ms while the run waits for jobs: refusals and workers seen, said to the user. */
  lookAround(): void {
    const r = this.redis;
    void (async () => {
      const refused = await r.hgetall(runKeyOf(this.key, ':refused'));
      for (const [who, why] of Object.entries(refused)) {
        if (this.refusals.has(who)) continue;
        this.refusals.add(who);
        this.note(`worker ${who} refused run ${this.key}: ${why}`);
      }
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${PREFIX}worker:*`, 'COUNT', 1000);
        cursor = next;
        for (const k of keys) {
          const v = await r.get(k);
          if (v !== null && (JSON.parse(v) as { runs?: string[] }).runs?.includes(this.key)) this.seenWorkers.add(k);
        }
      } while (cursor !== '0');
    })().catch(() => {});
    const now = performance.now();
    if (this.seenWorkers.size === 0 && now - this.lastNote > 10_000) {
      this.lastNote = now;
      this.note(`waiting for workers: none has joined run ${this.key} yet (start one with: mmcheck worker --redis ${this.o.target.display})`);
    }
  }

  /** Remove the run's keys and queue, and disconnect (bounded: Redis may be gone). */
  async close(): Promise<void> {
    if (this.aliveTimer) clearInterval(this.aliveTimer);
    const { link } = this;
    const lost = link.failed !== undefined;
    if (!lost) {
      await Promise.race([
        (async () => {
          await this.queue.obliterate({ force: true }).catch(() => {});
          await dropRun(link, this.key, this.queueName).catch(() => {});
        })(),
        new Promise((res) => setTimeout(res, 3000).unref()),
      ]);
    }
    await Promise.race([Promise.allSettled([this.events.close(), this.queue.close()]), new Promise((res) => setTimeout(res, lost ? 100 : 2000).unref())]);
    if (lost) {
      void this.events.disconnect().catch(() => {});
      void this.queue.disconnect().catch(() => {});
    }
    link.close();
  }
}

// ------------------------------------------------------------------ worker

/** What a worker process gives the handler of a run it serves. */
export interface ServeContext {
  link: RedisLink;
  d: RunDescriptor;
  /** The run's piscina pool (the Accepted file and data). */
  pool: Piscina;
  log(message: string): void;
  /** Testing fault handling: hold every job this long before answering. */
  delayMs?: number;
}

/** A run this machine serves: the piscina worker it runs, and the handler of the run's jobs. */
export interface Accepted {
  file: string;
  workerData: unknown;
  handler(ctx: ServeContext): (job: Job) => Promise<unknown>;
}

export interface WorkerOptions {
  target: RedisTarget;
  /** Jobs run at once (piscina threads). */
  concurrency: number;
  /**
   * Decide whether this process may serve a run: resolve its model locally
   * (never from the network) and compare identities. A string is the
   * reason to refuse it.
   */
  accept(d: RunDescriptor): Promise<Accepted | string>;
  /** BullMQ lock duration: a job whose worker died is run elsewhere about this long after (default 30 s). */
  lockMs?: number;
  /** Testing fault handling: hold every job this long before answering (a slow or hung worker). */
  delayMs?: number;
  /** Lines for the log (redacted by the caller's printer). */
  log(message: string): void;
  /** Resolves to stop serving (SIGINT, SIGTERM). */
  stop: Promise<void>;
}

interface Serving {
  worker: Worker;
  pool: Piscina;
  jobs: number;
}

/**
 * Serve work until `stop` resolves (returns) or Redis is lost (throws
 * DistributedError). Runs are discovered in Redis; each accepted run gets a
 * BullMQ worker on its queue and a piscina pool.
 */
export async function serveWorker(o: WorkerOptions): Promise<void> {
  const link = await RedisLink.open(o.target);
  const r = link.redis;
  const id = `${hostname()}-${process.pid}`;
  const serving = new Map<string, Serving>();
  const refused = new Set<string>();
  const connection = connectionOptions(o.target);
  const lockMs = o.lockMs ?? 30_000;
  let stopping = false;

  const heartbeat = (): Promise<unknown> =>
    r.set(`${PREFIX}worker:${id}`, JSON.stringify({ host: hostname(), pid: process.pid, concurrency: o.concurrency, runs: [...serving.keys()] }), 'PX', 10_000);

  // Thread pools by what they run, kept between runs of the same model (a pool's threads build the model once).
  const pools = new Map<string, { pool: Piscina; users: number; idleSince: number }>();
  const poolFor = (a: Accepted): Piscina => {
    const k = JSON.stringify([a.file, a.workerData]);
    let p = pools.get(k);
    if (!p) {
      const pool = new Piscina({ filename: a.file, workerData: a.workerData, minThreads: o.concurrency, maxThreads: o.concurrency, idleTimeout: 60_000, concurrentTasksPerWorker: 1 });
      p = { pool, users: 0, idleSince: 0 };
      pools.set(k, p);
    }
    p.users++;
    return p.pool;
  };
  const release = (pool: Piscina): void => {
    for (const p of pools.values())
      if (p.pool === pool) {
        p.users--;
        p.idleSince = Date.now();
      }
  };
  const dropIdlePools = (all: boolean): void => {
    for (const [k, p] of pools)
      if (all || (p.users === 0 && Date.now() - p.idleSince > 60_000)) {
        pools.delete(k);
        void p.pool.destroy().catch(() => {});
      }
  };

  const close = async (key: string, why: string): Promise<void> => {
    const s = serving.get(key);
    if (!s) return;
    serving.delete(key);
    await Promise.race([s.worker.close(true).catch(() => {}), new Promise((res) => setTimeout(res, 2000).unref())]);
    release(s.pool);
    o.log(`run ${key}: ${why} (${s.jobs} jobs done here)`);
  };

  const discover = async (): Promise<void> => {
    const keys = await r.smembers(`${PREFIX}runs`);
    for (const key of [...serving.keys()]) {
      if (!keys.includes(key) || (await r.exists(runKeyOf(key, ':alive'))) === 0) await close(key, 'over');
    }
    for (const key of keys) {
      if (serving.has(key) || refused.has(key) || stopping) continue;
      if ((await r.exists(runKeyOf(key, ':alive'))) === 0) continue;
      const text = await r.get(runKeyOf(key));
      if (text === null) continue;
      const d = JSON.parse(text) as RunDescriptor;
      const verdict = await o.accept(d);
      if (typeof verdict === 'string') {
        refused.add(key);
        await r.hset(runKeyOf(key, ':refused'), id, verdict);
        o.log(`refusing run ${key} from ${d.host}: ${verdict}`);
        continue;
      }
      const pool = poolFor(verdict);
      const handle = verdict.handler({ link, d, pool, log: o.log, ...(o.delayMs ? { delayMs: o.delayMs } : {}) });
      const s: Serving = { pool, jobs: 0 } as Omit<Serving, 'worker'> as Serving;
      s.worker = new Worker(
        d.queue,
        async (job: Job) => {
          const out = await handle(job);
          s.jobs++;
          return out;
        },
        {
          connection,
          prefix: BULL_PREFIX,
          // Two jobs per thread: one's Redis round trips overlap the other's work.
          concurrency: o.concurrency * 2,
          lockDuration: lockMs,
          stalledInterval: Math.max(500, Math.floor(lockMs / 2)),
          // A killed worker's job is moved back this many times before the run fails.
          maxStalledCount: 20,
          autorun: true,
        },
      );
      s.worker.on('error', (e: Error) => {
        if (!CONNECTION_ERROR.test(e.message)) o.log(`run ${key}: ${redactUrls(e.message)}`);
      });
      s.worker.on('failed', (job, e) => o.log(`run ${key}: job ${job?.id ?? '?'} failed here: ${redactUrls(e.message)}`));
      serving.set(key, s);
      o.log(`serving run ${key} from ${d.host} (${d.kind}, ${o.concurrency} thread${o.concurrency === 1 ? '' : 's'})`);
      await heartbeat();
    }
  };

  let timer: NodeJS.Timeout | undefined;
  try {
    await link.guard(heartbeat());
    o.log(`worker ${id} waiting for runs on ${o.target.display}`);
    let busy = false;
    const tick = new Promise<void>((_, reject) => {
      timer = setInterval(() => {
        if (busy) return;
        busy = true;
        link
          .guard(Promise.all([heartbeat(), discover().then(() => dropIdlePools(false))]))
          .catch((e: unknown) => {
            if (e instanceof DistributedError) reject(e);
            else o.log(`internal error: ${redactUrls((e as Error).message)}`);
          })
          .finally(() => (busy = false));
      }, 500);
    });
    await Promise.race([o.stop, tick, link.fatal]);
    stopping = true;
  } finally {
    if (timer) clearInterval(timer);
    const lost = link.failed !== undefined;
    const tidy = async (): Promise<void> => {
      for (const key of [...serving.keys()]) {
        if (lost) {
          const s = serving.get(key)!;
          serving.delete(key);
          void s.worker.disconnect().catch(() => {});
        } else await close(key, 'worker stopping');
      }
      dropIdlePools(true);
      if (!lost) await r.del(`${PREFIX}worker:${id}`).catch(() => {});
    };
    // Bounded: Redis may be gone (then requests would wait for it).
    await Promise.race([tidy(), new Promise((res) => setTimeout(res, 3000).unref())]);
    link.close();
  }
}
