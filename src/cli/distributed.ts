// Work across machines (src/engine/redis-run.ts), the mm model's side: what
// identifies the code a run needs (mmcheck's version and content hashes of
// the model, the properties, the engine, the swarm configurations and the
// variant file), and `mmcheck worker --redis URL`, which serves the work of
// every run on that Redis whose model it has, byte for byte, on its own
// disk: levels of check and gate (src/engine/distributed.ts) and walks of
// simulate (src/engine/simulate-redis.ts).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { isVariantFile } from '../../models/variants/load.ts';
import { serveWorker, type Identity, type RunDescriptor } from '../engine/redis-run.ts';
import { explorationService } from '../engine/distributed.ts';
import { walkService } from '../engine/simulate-redis.ts';
import type { SimulateWorkerData } from '../engine/simulate.ts';
import { DEFAULT_BOUNDS } from '../../models/mm/model.ts';
import { mmSwarmSpec } from './mm-search.ts';
import { DistributedError, parseRedisUrl, redactUrls } from '../engine/redis.ts';
import { mmModelSpec, type MmSpec } from './model-spec.ts';
import { COMPILED, EXIT, UsageError, parseCount, err, makeModel } from './common.ts';

// The project's root, whether this runs from the sources (src/cli/) or
// compiled (dist/src/cli/): the hashes are of the sources either way, so a
// compiled coordinator and a worker running the sources agree.
const ROOT = fileURLToPath(new URL(COMPILED ? '../../../' : '../../', import.meta.url));

/**
 * The code that decides a run's results, hashed per group (a variant file is
 * its own group): the model, the properties, the engine, and the swarm
 * configurations that simulate's walks draw (src/cli/mm-search.ts).
 */
const GROUPS: Record<string, string> = { models: 'models', properties: 'properties', engine: 'src/engine', search: 'src/cli/mm-search.ts' };

function filesUnder(dir: string): string[] {
  if (statSync(dir).isFile()) return [dir];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (/\.(ts|mts|js|mjs|json)$/.test(name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function hashFiles(files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(relative(ROOT, f));
    h.update('\0');
    h.update(readFileSync(f));
    h.update('\0');
  }
  return h.digest('hex');
}

let groupHashes: Record<string, string> | undefined;

export function mmcheckVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** mmcheck's version and the content hashes of what a run of `variant` executes on this machine. */
export function identityOf(variant: string): Identity {
  groupHashes ??= Object.fromEntries(Object.entries(GROUPS).map(([g, dir]) => [g, hashFiles(filesUnder(join(ROOT, dir)))]));
  const hashes = { ...groupHashes };
  if (isVariantFile(variant)) hashes['variant file'] = hashFiles([variant]);
  return { version: mmcheckVersion(), hashes };
}

/** Why this machine cannot serve a run (or undefined when it can). */
export function refusal(d: RunDescriptor): string | undefined {
  const spec = d.spec as Partial<MmSpec> | null;
  if (typeof spec?.variant !== 'string' || typeof spec.bounds !== 'object' || spec.bounds === null) return 'the run does not describe an mm model';
  if (d.identity.version !== mmcheckVersion()) return `mmcheck version ${mmcheckVersion()} here, ${d.identity.version} on the coordinator`;
  if (isVariantFile(spec.variant) && !existsSync(spec.variant)) return `the variant file ${spec.variant} is not on this machine`;
  const mine = identityOf(spec.variant).hashes;
  const differ = Object.keys({ ...mine, ...d.identity.hashes }).filter((g) => mine[g] !== d.identity.hashes[g]);
  if (differ.length > 0) {
    const what = differ.map((g) => (g === 'variant file' ? `the variant file ${spec.variant}` : g === 'search' ? GROUPS[g] : `${GROUPS[g] ?? g}/`)).join(', ');
    return `different model content: ${what} differ${differ.length === 1 && !what.endsWith('/') ? 's' : ''} from the coordinator's (content hash ${mine[differ[0]!]?.slice(0, 12) ?? 'none'} here, ${d.identity.hashes[differ[0]!]?.slice(0, 12) ?? 'none'} there); run the same mmcheck commit and variant files everywhere`;
  }
  return undefined;
}

/** What a simulate run adds to its MmSpec: the walks' start and whether they draw swarm configurations. */
export interface WalkSpec {
  swarm: boolean;
  fromTexts: string[];
}

/** The walk threads' data for a simulate run, built on this machine (the swarm module is this machine's). */
export function walkWorkerData(model: SimulateWorkerData['model'], spec: MmSpec & WalkSpec): SimulateWorkerData {
  return { model, ...(spec.swarm ? { swarm: mmSwarmSpec({ ...DEFAULT_BOUNDS, ...spec.bounds }) } : {}), fromTexts: spec.fromTexts };
}

export interface WorkerCliOptions {
  redis?: string;
  concurrency?: string;
  lockMs?: string;
  delayMs?: string;
}

/** The Redis URL: --redis, else $MMCHECK_REDIS (which keeps a password off the command line). */
export function redisUrlOption(given: string | undefined): string | undefined {
  return given ?? process.env.MMCHECK_REDIS;
}

/** `mmcheck worker --redis URL [--concurrency N]`: serve until SIGINT/SIGTERM (0) or until Redis is lost (3). */
export async function cmdWorker(o: WorkerCliOptions): Promise<number> {
  const url = redisUrlOption(o.redis);
  if (url === undefined) throw new UsageError('worker needs --redis URL (or MMCHECK_REDIS)');
  const target = parseRedisUrl(url);
  const concurrency = parseCount('concurrency', o.concurrency, 1) ?? availableParallelism();
  const lockMs = parseCount('lock-ms', o.lockMs, 200);
  const delayMs = parseCount('delay-ms', o.delayMs, 0);
  let stop!: () => void;
  const stopped = new Promise<void>((res) => (stop = res));
  let signals = 0;
  const onSignal = (): void => {
    if (++signals > 1) process.exit(EXIT.interrupted);
    err('mmcheck worker: stopping (the batches in progress are redone by other workers)');
    stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const log = (m: string): void => err(`mmcheck worker: ${redactUrls(m)}`);
  try {
    await serveWorker({
      target,
      concurrency,
      ...(lockMs !== undefined ? { lockMs } : {}),
      ...(delayMs !== undefined ? { delayMs } : {}),
      stop: stopped,
      log,
      accept: async (d) => {
        const why = refusal(d);
        if (why !== undefined) return why;
        const spec = d.spec as MmSpec & Partial<WalkSpec>;
        try {
          // Bounds and properties are checked here, before any job is taken.
          await makeModel(spec.variant, spec.bounds, spec.only);
        } catch (e) {
          return `cannot build the model: ${(e as Error).message}`;
        }
        const model = mmModelSpec({ variant: spec.variant, bounds: spec.bounds, ...(spec.only !== undefined ? { only: spec.only } : {}), ...(spec.options !== undefined ? { options: spec.options } : {}) });
        if (d.kind === 'explore') return explorationService(model);
        if (d.kind === 'simulate') return walkService(walkWorkerData(model, spec as MmSpec & WalkSpec));
        return `this mmcheck serves explore and simulate runs, not "${String(d.kind)}" runs`;
      },
    });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof DistributedError) {
      err(`mmcheck worker: ${e.message}`);
      return EXIT.internal;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Connections being retried or threads winding down must not keep a stopped worker alive.
    setTimeout(() => process.exit(), 1000).unref();
  }
}
