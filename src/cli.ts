// The command line (DESIGN.md §8). Imported by bin/mmcheck.js, which
// registers tsx. Exit codes: 0 no violation, 1 violation, 2 bad input (one
// line, nothing written), 3 resource limit or internal error, 130 interrupted.
//
// `check` explores on a pool of worker threads (--workers) coordinated from
// the main thread between batches; `gate` runs the synchronous explorer in
// one worker thread. Either way the main thread stays free to receive
// SIGINT, which stops the search cleanly (src/cli/exploration.ts).
//
// Each command's module is imported when the command runs: a command that
// explores nothing (list, models, --help) does not load the explorer, the
// worker pool or the picture renderer (issue 14: start-up time).

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isMainThread } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { ParseError } from './engine/model.ts';
import { DEFAULT_BOUNDS } from '../models/mm/model.ts';
import { MAX_THREADS } from '../models/mm/state.ts';
import { DEFAULT_DB_PATH, StoreError } from './store/db.ts';
import type { RunOptions } from './cli/run.ts';
import type { CheckOptions } from './cli/check.ts';
import { DEFAULT_CHECK_DEPTH, DEFAULT_EXHAUSTIVE_S, DEFAULT_WALK_DEPTH, EXIT, UsageError, ResultError, err } from './cli/common.ts';
import type { ReplayOptions } from './cli/replay.ts';
import type { GateOptions } from './cli/gate.ts';
import type { WorkerCliOptions } from './cli/distributed.ts';
import type { SimulateOptions } from './cli/simulate.ts';
import type { ShrinkOptions } from './cli/shrink.ts';

/** check and gate: --por. */
const POR_HELP =
  "lock granularity: partial-order reduction, expanding one process family's steps alone where they commute with the rest (traces of always-properties may come out longer than the shortest)";

function addBoundOptions(c: Command): Command {
  return c
    .option('--procs <n>', `processes (default ${DEFAULT_BOUNDS.procs})`)
    .option('--pages <n>', `pages per address space (default ${DEFAULT_BOUNDS.pages})`)
    .option('--max-len <n>', `longest mapping, in pages (default ${DEFAULT_BOUNDS.maxLen})`)
    .option('--ops <list>', `syscalls allowed, comma separated (default ${DEFAULT_BOUNDS.ops.join(',')})`)
    .option('--enomem <n>', `ENOMEM injections (default ${DEFAULT_BOUNDS.enomem})`)
    .option('--large-folios', 'write faults may also allocate a 2-page folio')
    .option('--relocate', 'offer mremap moves with MREMAP_RELOCATE_ANON (RFC models only accept it)')
    .option('--granularity <g>', 'syscall: each syscall is one step; lock: syscalls split at lock points, with rmap walkers (default syscall)')
    .option('--walkers <n>', `rmap walkers along one trace, at lock granularity (default ${DEFAULT_BOUNDS.walkers})`)
    .option('--threads <n>', `threads per process issuing syscalls (P0.1 ...), at lock granularity (default ${DEFAULT_BOUNDS.threads}, at most ${MAX_THREADS})`)
    .option('--no-reduce', 'lock granularity: keep issuing a syscall or starting a walker as a step of its own');
}

function program(setCode: (n: number) => void): Command {
  const p = new Command('mmcheck')
    .description("Exhaustive model checker of the Linux kernel's anonymous reverse mapping")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(`mmcheck: ${s.replace(/^error: /, '').trim()}\n`) });

  addBoundOptions(
    p
      .command('run')
      .description('execute operations from the initial state and print the final state and violated properties')
      .argument('[ops]', 'operations separated by ";" or newlines, e.g. "P0 mmap 0 4; P0 fault 1 w"')
      .option('--file <path>', 'read the operations from a file')
      .option('--model <name>', 'model or variant', 'mainline')
      .option('--json', 'print the final state as JSON')
      .option('--steps', 'print what every step changed')
      .option('--format <format>', 'text, or a picture: dot, svg (one step), html (the whole trace)', 'text')
      .option('--out <path>', 'write the picture to a file')
      .option('--step <n>', 'the step to draw with dot or svg (0 = initial state; default the last)'),
  ).action(async (ops: string | undefined, o: RunOptions) => setCode(await (await import('./cli/run.ts')).cmdRun(ops, o)));

  addBoundOptions(
    p
      .command('check')
      .description('explore every sequence of operations up to --depth and check every property')
      .option('--model <name>', 'model or variant', 'mainline')
      .option('--depth <n>', `maximum number of operations (default ${DEFAULT_CHECK_DEPTH})`)
      .option('--from <ops-or-file>', 'start from the state these operations reach (counted in the depth)')
      .option('--continue', 'keep going after the first violation (shortest violation per property)')
      .option('--por', POR_HELP)
      .option('--properties <list>', 'check only these properties, comma separated (see mmcheck properties)')
      .option('--db <path>', 'results database', DEFAULT_DB_PATH)
      .option('--json', 'one JSON event per line on stdout (progress, violation, done)')
      .option('--workers <n>', `worker threads (default: the number of cores, ${availableParallelism()} here); results do not depend on it`)
      .option('--max-memory <mb>', 'stop cleanly (exit 3, run recorded) before the process uses more memory than this')
      .option('--checkpoint-every <seconds>', 'checkpoint at level boundaries this often, and where the search stops (next to --db)')
      .option('--resume <run>', "continue a stopped or depth-bounded run from its checkpoint to --depth (the run's model and bounds)")
      .option('--check-immutability', "debug a variant: freeze every state before its successors are computed, and name the function that writes to one")
      .option('--redis <url>', 'expand on `mmcheck worker` processes through this Redis (redis://[:password@]host[:port], rediss:// for TLS) instead of threads'),
  ).action(async (o: CheckOptions) => setCode(await (await import('./cli/check.ts')).cmdCheck(o)));

  addBoundOptions(
    p
      .command('gate')
      .description('explore a base model and a patch variant at the same bounds; fail if the patch breaks a property the base keeps')
      .requiredOption('--patch <name-or-file>', 'the patch: a built-in variant or a variant file (.ts, .mts, .js)')
      .option('--base <name-or-file>', 'the base model', 'mainline')
      .option('--depth <n>', `maximum number of operations (default ${DEFAULT_CHECK_DEPTH})`)
      .option('--from <ops-or-file>', 'start from the state these operations reach (counted in the depth)')
      .option('--db <path>', 'results database', DEFAULT_DB_PATH)
      .option('--json', 'print the verdict as JSON')
      .option('--junit <file>', 'write a JUnit report, one test case per property')
      .option('--por', POR_HELP)
      .option('--check-immutability', "debug a variant: freeze every state before its successors are computed, and name the function that writes to one")
      .option('--workers <n>', `worker threads (default: the number of cores, ${availableParallelism()} here); results do not depend on it`)
      .option('--redis <url>', 'explore both models on `mmcheck worker` processes through this Redis (redis://[:password@]host[:port], rediss:// for TLS) instead of threads'),
  ).action(async (o: GateOptions) => setCode(await (await import('./cli/gate.ts')).cmdGate(o)));

  addBoundOptions(
    p
      .command('simulate')
      .description('random and swarm walks past the exhaustive horizon; every violation found is shrunk and stored')
      .option('--model <name>', 'model or variant', 'mainline')
      .option('--depth <n>', `longest walk, in operations (default ${DEFAULT_WALK_DEPTH})`)
      .option('--walks <n>', 'walk budget (results identical for any --workers)')
      .option('--time <seconds>', 'time budget (default 60 when --walks is not given)')
      .option('--seed <n>', 'seed of the walks (default random, printed)')
      .option('--no-swarm', 'uniform walks over the whole alphabet (default: each walk draws a subset of the syscalls and bounds)')
      .option('--from <ops-or-file>', 'walk from the state these operations reach')
      .option('--continue', 'keep going after the first violation (one per property)')
      .option('--properties <list>', 'report only these properties, comma separated (see mmcheck properties); a walk that violates another ends in a milestone that later walks may start from')
      .option('--no-milestones', 'with --properties: check only those, and start every walk from the initial (or --from) state')
      .option('--exhaustive-time <seconds>', `time for the exhaustive search for a shorter violation after shrinking (0: skip; default ${DEFAULT_EXHAUSTIVE_S})`)
      .option('--db <path>', 'results database', DEFAULT_DB_PATH)
      .option('--json', 'one JSON event per line on stdout (start, progress, violation, done)')
      .option('--workers <n>', `worker threads (default: the number of cores, ${availableParallelism()} here)`)
      .option('--redis <url>', 'run the walks on `mmcheck worker` processes through this Redis (redis://[:password@]host[:port], rediss:// for TLS); the same walks as on threads for a --seed'),
  ).action(async (o: SimulateOptions) => setCode(await (await import('./cli/simulate.ts')).cmdSimulate(o)));

  p.command('shrink')
    .description('shrink a stored violation (fewer operations, processes, lower addresses) and store it beside the original')
    .argument('<violation-id>', 'id shown by check, simulate and list')
    .option('--db <path>', 'results database', DEFAULT_DB_PATH)
    .option('--exhaustive-time <seconds>', `time for the exhaustive search for a shorter violation (0: skip; default ${DEFAULT_EXHAUSTIVE_S})`)
    .option('--workers <n>', 'worker threads of the exhaustive search')
    .option('--json', 'print JSON')
    .action(async (id: string, o: ShrinkOptions) => setCode(await (await import('./cli/shrink.ts')).cmdShrink(id, o)));

  p.command('bugs')
    .description('the historical bug corpus: each buggy variant must be caught, each fixed one must pass')
    .option('--only <id>', 'one entry, e.g. B8e')
    .option('--traces', 'print the trace found for each entry')
    .option('--json', 'print JSON')
    .option('--workers <n>', `worker threads (default: the number of cores, ${availableParallelism()} here); results do not depend on it`)
    .action(async (o: { only?: string; json?: boolean; traces?: boolean; workers?: string }) => setCode(await (await import('./cli/bugs.ts')).cmdBugs(o)));

  p.command('bench')
    .description('the performance benchmark: fixed configurations, states per second, bytes per state, peak memory')
    .option('--only <name>', 'one configuration, or distributed (the Redis row alone)')
    .option('--json', 'print JSON')
    .option('--no-naive', 'skip the naive baseline')
    .addOption(new Option('--phase <phase>', 'one measurement (1, 2 or naive) of --only, as JSON: what the bench runs in each child process').hideHelp())
    .action(async (o: { only?: string; json?: boolean; naive?: boolean; phase?: string }) => setCode(await (await import('./cli/bench.ts')).cmdBench(o)));

  p.command('worker')
    .description('serve the work of `check`, `gate` and `simulate --redis` runs whose model this machine has (same version and content hash)')
    .option('--redis <url>', 'the Redis of the runs: redis://[:password@]host[:port][/db], rediss:// for TLS (default $MMCHECK_REDIS)')
    .option('--concurrency <n>', `batches expanded at once, on as many threads (default: the number of cores, ${availableParallelism()} here)`)
    .addOption(new Option('--lock-ms <ms>', "BullMQ lock duration: a dead worker's batch is redone about this long after (default 30000)").hideHelp())
    .addOption(new Option('--delay-ms <ms>', 'testing: hold every batch this long before answering').hideHelp())
    .action(async (o: WorkerCliOptions) => setCode(await (await import('./cli/distributed.ts')).cmdWorker(o)));

  p.command('bench-distributed')
    .description('the distributed measurement: two worker processes on a local Redis against two threads, bytes per state over Redis')
    .option('--only <name>', 'the bench configuration (default: default)')
    .option('--repeat <n>', 'runs of each, alternately; the fastest counts (default 2)')
    .option('--json', 'print JSON')
    .action(async (o: { only?: string; json?: boolean; repeat?: string }) => setCode(await (await import('./cli/bench-distributed.ts')).cmdBenchDistributed(o)));

  p.command('list')
    .description('recorded runs and violations, newest first')
    .option('--db <path>', 'results database', DEFAULT_DB_PATH)
    .option('--limit <n>', 'rows of each kind', '20')
    .option('--json', 'print JSON')
    .action(async (o: { db: string; limit: string; json?: boolean }) => setCode((await import('./cli/info.ts')).cmdList(o)));

  p.command('replay')
    .description('re-execute a stored violation step by step and confirm it')
    .argument('<violation-id>', 'id shown by check and list')
    .option('--db <path>', 'results database', DEFAULT_DB_PATH)
    .option('--format <format>', 'text, json, or a picture: dot, svg (one step), html (the whole trace)', 'text')
    .option('--out <path>', 'write the picture to a file')
    .option('--step <n>', 'the step to draw with dot or svg (0 = initial state; default the last)')
    .action(async (id: string, o: ReplayOptions) => setCode(await (await import('./cli/replay.ts')).cmdReplay(id, o)));

  p.command('properties')
    .description('the properties of a model: id, when checked, description, kernel rule')
    .option('--model <name>', 'model or variant', 'mainline')
    .option('--json', 'print JSON')
    .action(async (o: { model: string; json?: boolean }) => setCode(await (await import('./cli/info.ts')).cmdProperties(o)));

  p.command('models')
    .description('built-in models and variants')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => setCode((await import('./cli/info.ts')).cmdModels(o)));
  return p;
}

/** Run the command line; returns the exit code. Errors become one line on stderr. */
export async function main(argv: readonly string[]): Promise<number> {
  let code: number = EXIT.ok;
  try {
    await program((n) => (code = n)).parseAsync([...argv]);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed its one line (or the help).
      // Help asked for: 0; help shown because no command was given, or a usage error: 2.
      return e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    if (e instanceof UsageError || e instanceof ParseError || e instanceof StoreError || e instanceof InvalidArgumentError) {
      err(`mmcheck: ${e.message}`);
      return EXIT.badInput;
    }
    if (e instanceof ResultError) {
      err(`mmcheck: ${e.message}`);
      return e.code;
    }
    const x = e instanceof Error ? e : new Error(String(e));
    if (x instanceof RangeError) err(`mmcheck: resource limit: ${x.message}; lower --depth or the bounds`);
    else err(`mmcheck: internal error: ${x.message}${process.env.MMCHECK_DEBUG ? `\n${x.stack}` : ' (MMCHECK_DEBUG=1 for the stack)'}`);
    return EXIT.internal;
  }
}

// A closed pipe (`mmcheck list | head`) ends the output, not the process with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

if (isMainThread) process.exitCode = await main(process.argv);

