// `mmcheck bench-distributed`: the `distributed` measurement of the bench.
// On one bench configuration (src/cli/bench.ts), the coordinator (this
// process) plus two `mmcheck worker` processes (one thread each) on a
// redis-server started here on a free loopback port, against the two-thread
// pool (exploreParallel, workers 2) on the same bound. Reports the search
// times (the thread pool's start-up excluded; the worker processes are
// started and warmed by a small run first), the overhead of Redis against
// threads, and the bytes per distinct state that crossed Redis: the
// coordinator's payload (batches and fingerprints out, results in) and
// everything Redis received and sent (its INFO counters, BullMQ included).
// A measurement, not a test: the load average is printed with it. The same
// measurement is the `distributed` row of `mmcheck bench` (src/cli/bench.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { exploreParallel } from '../engine/parallel.ts';
import { exploreDistributed } from '../engine/distributed.ts';
import { parseRedisUrl } from '../engine/redis.ts';
import { BENCH_CONFIGS } from './bench.ts';
import { buildMmModel, mmModelSpec, type MmSpec } from './model-spec.ts';
import { identityOf } from './distributed.ts';
import { EXIT, ResultError, UsageError, num, out, parseCount } from './common.ts';

const BIN = fileURLToPath(new URL('../../bin/mmcheck.js', import.meta.url));

export interface DistributedBenchRow {
  name: string;
  generated: number;
  distinct: number;
  /** Seconds of search: two worker processes on Redis, and the two-thread pool (its start-up excluded). */
  secondsRedis: number;
  secondsThreads: number;
  /** secondsRedis / secondsThreads - 1. */
  overhead: number;
  /** Bytes per distinct state the coordinator wrote to (batches, fingerprints) and read from (results) Redis. */
  payloadPerState: number;
  /** Bytes per distinct state Redis received plus sent, all clients and BullMQ's own traffic included. */
  redisPerState: number;
  /** Successors sent back per new state (new ones plus duplicates across batches). */
  sentPerState: number;
  identical: boolean;
  load: number;
}

/** Why the measurement cannot run here (no redis-server on PATH), or undefined. */
export function redisServerMissing(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, 'redis-server'), constants.X_OK);
      return undefined;
    } catch {
      // not in this directory
    }
  }
  return 'redis-server is not installed (Debian/Ubuntu: apt-get install redis-server; .ci/run installs it)';
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function until(what: string, cond: () => Promise<boolean> | boolean, ms: number, failed: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    const why = failed();
    if (why !== undefined) throw new Error(`bench-distributed: ${why}`);
    if (Date.now() > deadline) throw new Error(`bench-distributed: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function netBytes(r: Redis): Promise<number> {
  const info = await r.info('stats');
  const get = (k: string): number => Number(new RegExp(`${k}:(\\d+)`).exec(info)?.[1] ?? 0);
  return get('total_net_input_bytes') + get('total_net_output_bytes');
}

/** Run the measurement on `name` (default: "default"), `repeat` times; starts and stops its own redis-server and workers. */
export async function benchDistributed(name = 'default', repeat = 2): Promise<DistributedBenchRow> {
  const config = BENCH_CONFIGS.find((c) => c.name === name);
  if (!config) throw new UsageError(`bench-distributed: no configuration "${name}" (${BENCH_CONFIGS.map((c) => c.name).join(', ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'mmcheck-bench-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const children: ChildProcess[] = [];
  let failed: string | undefined;
  const launch = (cmd: string, args: string[]): ChildProcess => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    // A program that cannot start (ENOENT) fails the wait for it, not the process.
    c.on('error', (e) => (failed = `${cmd}: ${e.message}`));
    children.push(c);
    return c;
  };
  const r = new Redis({ ...parseRedisUrl(url).options, lazyConnect: true, retryStrategy: () => 100 });
  r.on('error', () => {});
  try {
    launch('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']);
    await until('redis-server', async () => (await r.ping().catch(() => '')) === 'PONG', 20_000, () => failed);
    const logs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const w = launch('node', [BIN, 'worker', '--redis', url, '--concurrency', '1']);
      logs.push('');
      w.stderr!.on('data', (d: Buffer) => (logs[i] += d.toString()));
    }
    await until('the workers', () => logs.every((l) => l.includes('waiting for runs')), 60_000, () => failed);

    const spec: MmSpec = { variant: config.model, bounds: config.bounds };
    const model = await buildMmModel(spec);
    const target = parseRedisUrl(url);
    const identity = identityOf(spec.variant);
    const run = (depth: number) => exploreDistributed(model, { depth, stopAtFirst: false, target, spec, identity });
    // Warm-up: the workers join and build their thread pools.
    await run(Math.min(2, config.depth));
    // Alternately, `repeat` times each; the fastest of each (the machine's other load only slows a run down).
    let secondsRedis = Infinity;
    let secondsThreads = Infinity;
    let d!: Awaited<ReturnType<typeof run>>;
    let t!: Awaited<ReturnType<typeof exploreParallel>>;
    let redisBytes = 0;
    for (let i = 0; i < repeat; i++) {
      const before = await netBytes(r);
      d = await run(config.depth);
      redisBytes = (await netBytes(r)) - before;
      secondsRedis = Math.min(secondsRedis, d.elapsedMs / 1000);
      t = await exploreParallel(model, { depth: config.depth, stopAtFirst: false, workers: 2, spec: mmModelSpec(spec) });
      secondsThreads = Math.min(secondsThreads, (t.elapsedMs - t.startupMs) / 1000);
    }
    return {
      name,
      generated: d.generated,
      distinct: d.distinct,
      secondsRedis,
      secondsThreads,
      overhead: secondsRedis / secondsThreads - 1,
      payloadPerState: (d.bytesOut + d.bytesIn) / d.distinct,
      redisPerState: redisBytes / d.distinct,
      sentPerState: d.sent / d.distinct,
      identical: JSON.stringify([d.levelSizes, d.generated, d.coverage]) === JSON.stringify([t.levelSizes, t.generated, t.coverage]),
      load: loadavg()[0]!,
    };
  } finally {
    for (const c of children.reverse()) c.kill('SIGTERM');
    r.disconnect();
    await new Promise((res) => setTimeout(res, 500));
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The measurement as printed, here and as the bench's `distributed` row. */
export function distributedLines(row: DistributedBenchRow): string[] {
  return [
    `distributed (${row.name}): ${num(row.distinct)} distinct, ${num(row.generated)} generated; load average ${row.load.toFixed(1)}`,
    `  2 worker processes on Redis  ${row.secondsRedis.toFixed(2)} s`,
    `  2 threads                    ${row.secondsThreads.toFixed(2)} s`,
    `  overhead                     ${(row.overhead * 100).toFixed(0)} % (target <= 25 %)`,
    `  bytes per distinct state     ${num(row.payloadPerState)} coordinator payload, ${num(row.redisPerState)} through Redis in all`,
    `  successors sent per new state ${row.sentPerState.toFixed(2)}; results identical to threads: ${row.identical ? 'yes' : 'NO'}`,
  ];
}

export async function cmdBenchDistributed(o: { only?: string; json?: boolean; repeat?: string }): Promise<number> {
  const repeat = parseCount('repeat', o.repeat, 1) ?? 2;
  const missing = redisServerMissing();
  if (missing !== undefined) throw new ResultError(`bench-distributed: ${missing}`, EXIT.internal);
  const row = await benchDistributed(o.only ?? 'default', repeat);
  if (o.json) out(JSON.stringify(row));
  else for (const line of distributedLines(row)) out(line);
  return row.identical ? EXIT.ok : EXIT.internal;
}
