// Exploration across processes on Redis (src/engine/distributed.ts):
// `check --redis` with `mmcheck worker` processes gives the single-thread
// search's results, survives a worker killed mid-level (its batches are
// redone elsewhere) and a worker joining mid-run, resumes after the
// coordinator is killed, fails fast (exit 3) when Redis is unreachable or
// lost, refuses a worker whose model differs, and never shows the password.
// Starts a real redis-server on a free loopback port with a temporary
// directory (bind 127.0.0.1 only) and stops everything it starts. Processes
// are spawned asynchronously; waits are on conditions with generous bounds.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { setAutoFreeze } from 'immer';
import { explore } from '../src/engine/explorer.ts';
import { readCheckpoint } from '../src/engine/checkpoint.ts';
import { checkpointPath } from '../src/cli/exploration.ts';
import { buildMmModel, type MmSpec } from '../src/cli/model-spec.ts';
import { parseRedisUrl, redactUrls } from '../src/engine/redis.ts';
import { freePort } from '../src/cli/bench-distributed.ts';

setAutoFreeze(false);
const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'mmcheck.js');
const tmp = mkdtempSync(join(tmpdir(), 'mmcheck-redis-'));
const PASSWORD = 'pw-Zq8x41';
const children = new Set<ChildProcess>();

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
}

function start(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((res) =>
    child.on('exit', (code) => {
      children.delete(child);
      res(code);
    }),
  );
  return { child, out: () => out, err: () => err, exit };
}

const mmcheck = (args: string[]): Proc => start('node', [BIN, ...args]);

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startRedis(password?: string, tls?: { cert: string; key: string }): Promise<{ proc: Proc; url: string; port: number }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmp, 'redis-'));
  const args = ['--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'];
  if (tls) args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-auth-clients', 'no');
  else args.push('--port', String(port));
  if (password) args.push('--requirepass', password);
  const proc = start('redis-server', args);
  const url = `${tls ? 'rediss' : 'redis'}://${password ? `:${password}@` : ''}127.0.0.1:${port}`;
  const probe = new Redis({ ...parseRedisUrl(url).options, ...(tls ? { tls: { ca: readFileSync(tls.cert) } } : {}), lazyConnect: true, retryStrategy: () => 100 });
  probe.on('error', () => {});
  try {
    await waitFor('redis-server to answer', async () => (await probe.ping().catch(() => '')) === 'PONG', 20_000);
  } finally {
    probe.disconnect();
  }
  return { proc, url, port };
}

const worker = (url: string, extra: string[] = [], env: Record<string, string> = {}): Proc =>
  start('node', [BIN, 'worker', '--redis', url, '--concurrency', '1', '--lock-ms', '1500', ...extra], env);

async function stop(...ps: Proc[]): Promise<void> {
  for (const p of ps) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  await Promise.all(ps.map((p) => p.exit));
}

/** The JSON events of a `check --json` run, without what depends on time or on the run. */
function events(out: string): { done: Record<string, unknown>; violations: Record<string, unknown>[] } {
  const evs = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const done = evs.find((e) => e.event === 'done');
  if (!done) throw new Error(`no done event in:\n${out}`);
  return { done, violations: evs.filter((e) => e.event === 'violation') };
}

/** What must equal the single-thread search's result. */
async function expected(spec: MmSpec, depth: number, stopAtFirst: boolean) {
  const model = await buildMmModel(spec);
  const r = explore(model, { depth, stopAtFirst });
  return {
    outcome: r.outcome,
    generated: r.generated,
    distinct: r.distinct,
    levelSizes: r.levelSizes,
    coverage: r.coverage,
    violations: r.violations.map((v) => ({ property: v.property, depth: v.depth, fingerprint: v.fingerprint, trace: v.traceText })),
  };
}

function got(out: string) {
  const { done, violations } = events(out);
  return {
    outcome: done.outcome,
    generated: done.generated,
    distinct: done.distinct,
    levelSizes: done.levelSizes,
    coverage: done.coverage,
    violations: violations.map((v) => ({ property: v.property, depth: v.depth, fingerprint: v.fingerprint, trace: v.trace })),
  };
}

const SMALL: MmSpec = { variant: 'mainline', bounds: { procs: 2, pages: 3, maxLen: 1 } };
const SMALL_ARGS = ['--procs', '2', '--pages', '3', '--max-len', '1'];

let redis: { proc: Proc; url: string; port: number };
/** Two workers serving every run on `redis` (database 0) for the whole file. */
let shared: Proc[] = [];
beforeAll(async () => {
  redis = await startRedis(PASSWORD);
  shared = [worker(redis.url), worker(redis.url)];
  await waitFor('the shared workers', () => shared.every((w) => /waiting for runs/.test(w.err())));
}, 120_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 100));
  rmSync(tmp, { recursive: true, force: true });
});

describe('check --redis: the single-thread results, whatever the workers do', () => {
  it('two workers: the same levels, counts, coverage; the same violation and trace; no password anywhere', async () => {
    const db = join(tmp, 'a.db');
    const bugArgs = ['--model', 'b8e-put-root-first', '--procs', '3', '--pages', '1', '--max-len', '1', '--ops', 'mmap,fault,fork,exit'];
    // Two runs at once on the same workers.
    const a = mmcheck(['check', '--redis', redis.url, '--depth', '4', ...SMALL_ARGS, '--continue', '--json', '--db', db]);
    const b = mmcheck(['check', '--redis', redis.url, '--depth', '7', ...bugArgs, '--json', '--db', join(tmp, 'a2.db')]);
    expect(await a.exit, a.err()).toBe(0);
    expect(got(a.out())).toEqual(await expected(SMALL, 4, false));
    expect(await b.exit, b.err()).toBe(1);
    const want = await expected({ variant: 'b8e-put-root-first', bounds: { procs: 3, pages: 1, maxLen: 1, ops: ['mmap', 'fault', 'fork', 'exit'] } }, 7, true);
    expect(want.violations.map((v) => v.property)).toEqual(['no-use-after-free']);
    expect(got(b.out())).toEqual(want);
    for (const text of [a.out(), a.err(), b.out(), b.err(), ...shared.map((w) => w.err() + w.out()), readFileSync(db).toString('latin1'), readFileSync(join(tmp, 'a2.db')).toString('latin1')]) {
      expect(text).not.toContain(PASSWORD);
    }
    expect(shared.map((w) => w.err()).join('')).toMatch(/serving run/);
  }, 120_000);

  it('a worker killed with SIGKILL mid-level: its batches are redone; a worker joining mid-run takes work', async () => {
    const db = join(tmp, 'b.db');
    // Database 4, which the shared workers do not serve: the run can end only
    // once the joiner has joined it and redone what the victim held (with the
    // shared workers it could end before the joiner started).
    const url = `${redis.url}/4`;
    // The victim holds every batch it takes (as a hung or dying machine would), then is killed.
    const victim = worker(url, ['--delay-ms', '600000']);
    let joiner: Proc | undefined;
    try {
      await waitFor('the victim to be ready', () => /waiting for runs/.test(victim.err()));
      const c = mmcheck(['check', '--redis', url, '--depth', '5', ...SMALL_ARGS, '--continue', '--json', '--db', db]);
      await waitFor('the victim to hold a batch', () => /holding batch/.test(victim.err()));
      victim.child.kill('SIGKILL');
      await victim.exit;
      joiner = worker(url);
      expect(await c.exit, c.err()).toBe(0);
      expect(got(c.out())).toEqual(await expected(SMALL, 5, false));
      expect(joiner.err()).toMatch(/serving run/);
    } finally {
      await stop(victim, ...(joiner ? [joiner] : []));
    }
  }, 120_000);

  it('the coordinator killed: --resume from its last checkpoint gives the uninterrupted counts', async () => {
    const db = join(tmp, 'c.db');
    // A slow worker (150 ms a batch) keeps the levels long enough to kill the coordinator between two.
    const slow = worker(`${redis.url}/2`, ['--delay-ms', '150']);
    try {
      const c = mmcheck(['check', '--redis', `${redis.url}/2`, '--depth', '5', ...SMALL_ARGS, '--continue', '--checkpoint-every', '0', '--db', db]);
      await waitFor('the run to start', () => /\(run (\d+)\)/.test(c.out()));
      const run = /\(run (\d+)\)/.exec(c.out())![1]!;
      const ckpt = checkpointPath(join(tmp, 'checkpoints'), db, Number(run));
      await waitFor('a checkpoint at level 2', () => existsSync(ckpt) && readCheckpoint(ckpt).level >= 2);
      c.child.kill('SIGKILL');
      await c.exit;
      // Resumed on the shared workers (database 0).
      const r = mmcheck(['check', '--resume', run, '--depth', '5', '--redis', redis.url, '--json', '--db', db]);
      expect(await r.exit, r.err()).toBe(0);
      expect(got(r.out())).toEqual(await expected(SMALL, 5, false));
    } finally {
      await stop(slow);
    }
    // Generous: a slow worker, a killed coordinator and a resume, while the
    // rest of the suite shares the machine (it took over two minutes once).
  }, 300_000);
});

describe('simulate --redis and gate --redis: the results of threads', () => {
  const BUG = ['--model', 'b8e-put-root-first', '--procs', '3', '--pages', '1', '--max-len', '1'];

  /** What a recorded run and its violations must share, whoever ran the work (not times, commands, worker counts). */
  async function recorded(db: string) {
    const list = mmcheck(['list', '--json', '--db', db]);
    expect(await list.exit, list.err()).toBe(0);
    const { runs, violations } = JSON.parse(list.out()) as { runs: Record<string, unknown>[]; violations: Record<string, unknown>[] };
    return {
      runs: runs.map(({ id, started_at, finished_at, command, duration_ms, workers, ...rest }) => rest),
      // The shrinking's own time aside.
      violations: violations.map(({ id, shrink, ...rest }) => ({ ...rest, shrink: typeof shrink === 'string' ? { ...(JSON.parse(shrink) as object), seconds: 0 } : shrink })),
    };
  }

  it('simulate --redis finds the violation threaded simulate finds with the same seed: the same walk, traces, counts and records', async () => {
    const args = ['simulate', ...BUG, '--walks', '2000', '--seed', '7', '--exhaustive-time', '0', '--json'];
    const threads = mmcheck([...args, '--workers', '1', '--db', join(tmp, 's1.db')]);
    expect(await threads.exit, threads.err()).toBe(1);
    const onRedis = mmcheck([...args, '--redis', redis.url, '--db', join(tmp, 's2.db')]);
    expect(await onRedis.exit, onRedis.err()).toBe(1);
    // Without what depends on time or on who ran the walks.
    const walked = (out: string) =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e.event === 'violation' || e.event === 'done')
        .map(({ seconds, statesPerSec, workers, shrink, ...rest }) => rest);
    const want = walked(threads.out());
    expect(want.map((e) => e.event)).toEqual(['violation', 'done']);
    expect(want[0]).toMatchObject({ property: 'no-use-after-free' });
    expect(walked(onRedis.out())).toEqual(want);
    expect(await recorded(join(tmp, 's2.db'))).toEqual(await recorded(join(tmp, 's1.db')));
    expect(onRedis.out()).not.toContain(PASSWORD);
    expect(JSON.stringify(await recorded(join(tmp, 's2.db')))).not.toContain(PASSWORD);
    expect(shared.map((w) => w.err()).join('')).toMatch(/serving run \S+ from \S+ \(simulate/);
  }, 120_000);

  it('gate --redis gives the verdict of gate on threads: both models explored by the workers', async () => {
    const args = ['gate', '--patch', 'b8e-put-root-first', '--procs', '3', '--pages', '1', '--max-len', '1', '--ops', 'mmap,fault,fork,exit', '--depth', '7', '--json'];
    const threads = mmcheck([...args, '--workers', '1', '--db', join(tmp, 'g1.db')]);
    expect(await threads.exit, threads.err()).toBe(1);
    const onRedis = mmcheck([...args, '--redis', redis.url, '--db', join(tmp, 'g2.db')]);
    expect(await onRedis.exit, onRedis.err()).toBe(1);
    const verdict = JSON.parse(threads.out()) as { pass: boolean; verdicts: { property: string; status: string }[] };
    expect(verdict.pass).toBe(false);
    expect(verdict.verdicts.filter((v) => v.status === 'blamed').map((v) => v.property)).toEqual(['no-use-after-free']);
    expect(JSON.parse(onRedis.out())).toEqual(verdict);
    expect(await recorded(join(tmp, 'g2.db'))).toEqual(await recorded(join(tmp, 'g1.db')));
    expect(onRedis.out() + onRedis.err()).not.toContain(PASSWORD);
  }, 120_000);

  it('simulate --redis with Redis unreachable: exit 3, saying so, the run recorded as an error', async () => {
    const port = await freePort();
    const s = mmcheck(['simulate', '--walks', '10', '--redis', `redis://:${PASSWORD}@127.0.0.1:${port}`, '--db', join(tmp, 's3.db')]);
    expect(await s.exit).toBe(3);
    expect(s.err()).toMatch(/cannot reach Redis at redis:\/\/\*\*\*@127\.0\.0\.1:\d+.*recorded as error/);
    expect(s.err() + s.out()).not.toContain(PASSWORD);
  }, 120_000);
});

describe('check --redis: failures are said and fast; TLS', () => {
  it('Redis unreachable: exit 3 with a clear message, for the coordinator and a worker; a bad URL is bad input', async () => {
    const port = await freePort();
    const url = `redis://:${PASSWORD}@127.0.0.1:${port}`;
    const c = mmcheck(['check', '--redis', url, '--depth', '2', '--db', join(tmp, 'd.db')]);
    const w = worker(url);
    const bad = mmcheck(['check', '--redis', 'http://127.0.0.1:1', '--db', join(tmp, 'd.db')]);
    expect(await c.exit).toBe(3);
    expect(c.err()).toMatch(new RegExp(`cannot reach Redis at redis://\\*\\*\\*@127\\.0\\.0\\.1:${port}`));
    expect(await w.exit).toBe(3);
    expect(w.err()).toMatch(/cannot reach Redis/);
    expect(await bad.exit).toBe(2);
    expect(bad.err()).toMatch(/--redis: .* must start with redis:\/\/ or rediss:\/\//);
    for (const t of [c.err(), c.out(), w.err()]) expect(t).not.toContain(PASSWORD);
  }, 120_000);

  it('Redis lost mid-run: the coordinator and the worker exit 3 saying so; the run is recorded as an error', async () => {
    const lost = await startRedis();
    const db = join(tmp, 'e.db');
    const w = worker(lost.url, ['--delay-ms', '200']);
    const c = mmcheck(['check', '--redis', lost.url, '--depth', '5', ...SMALL_ARGS, '--db', db]);
    await waitFor('a batch in progress', () => /holding batch/.test(w.err()));
    lost.proc.child.kill('SIGKILL');
    expect(await c.exit, c.err()).toBe(3);
    expect(c.err()).toMatch(/lost the connection to Redis at redis:\/\/127\.0\.0\.1:\d+.*recorded as error/);
    expect(await w.exit).toBe(3);
    expect(w.err()).toMatch(/lost the connection to Redis/);
    const list = mmcheck(['list', '--json', '--db', db]);
    expect(await list.exit).toBe(0);
    expect(list.out()).toMatch(/"outcome":\s*"error"/);
  }, 120_000);

  // check (levels) and simulate (walks): the same join check, whatever the run's work.
  it.each([
    { command: 'check', db: 1, work: ['--depth', '3'] },
    { command: 'simulate', db: 3, work: ['--walks', '200', '--seed', '1', '--exhaustive-time', '0'] },
  ])('a worker whose model content differs is refused with a clear message; one that matches serves the run ($command)', async ({ command, db: redisDb, work }) => {
    // A variant file outside the repository (imports by absolute URL).
    const mod = (p: string): string => pathToFileURL(join(ROOT, p)).href;
    const variant = join(tmp, `my-variant-${command}.mts`);
    const text = [
      `import { folio, vma } from '${mod('models/mm/ctx.ts')}';`,
      `import { linearPageIndex } from '${mod('models/mm/state.ts')}';`,
      `export default { name: 'my-variant', base: 'mainline', description: 'test', overrides: (base) => ({`,
      `  __folio_set_anon(c, f, v, page, ex) { base.__folio_set_anon(c, f, v, page, ex); folio(c, f).index = linearPageIndex(vma(c, v), page) + 1; },`,
      `}) };`,
    ].join('\n');
    writeFileSync(variant, text);
    const db = join(tmp, `f-${command}.db`);
    // Another database: the shared workers (database 0) do not serve it.
    const url = `${redis.url}/${redisDb}`;
    const c = mmcheck([command, '--redis', url, '--model', variant, ...work, ...SMALL_ARGS, '--json', '--db', db]);
    let wrong: Proc | undefined;
    let right: Proc | undefined;
    try {
      await waitFor('the run to be published', async () => {
        const r = new Redis({ ...parseRedisUrl(url).options, lazyConnect: true });
        try {
          await r.connect();
          return (await r.scard('mmcheck:runs')) > 0;
        } finally {
          r.disconnect();
        }
      });
      // The file changes after the coordinator hashed it: a worker now sees other content.
      writeFileSync(variant, `${text}\n// edited\n`);
      wrong = worker(url);
      await waitFor('the refusal', () => /refused run/.test(c.err()));
      expect(c.err()).toMatch(/worker \S+ refused run \S+: different model content: the variant file .*my-variant-\w+\.mts differs from the coordinator's/);
      expect(wrong.err()).toMatch(/refusing run \S+ from \S+: different model content/);
      writeFileSync(variant, text);
      right = worker(url);
      expect(await c.exit, c.err()).toBe(1);
      expect(events(c.out()).violations.map((v) => v.property)).toContain('rmap-coverage');
      expect(wrong.err()).not.toMatch(/serving run/);
    } finally {
      await stop(...(wrong ? [wrong] : []), ...(right ? [right] : []));
      if (c.child.exitCode === null) c.child.kill('SIGKILL');
    }
  }, 120_000);

  it('rediss:// with a password: TLS to a redis-server with a certificate (CA given with NODE_EXTRA_CA_CERTS)', async () => {
    const cert = join(tmp, 'cert.pem');
    const key = join(tmp, 'key.pem');
    const ssl = start('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1']);
    expect(await ssl.exit, `openssl is needed for this test: ${ssl.err()}`).toBe(0);
    const tls = await startRedis(PASSWORD, { cert, key });
    const env = { NODE_EXTRA_CA_CERTS: cert };
    const w = worker(tls.url, [], env);
    try {
      const c = start('node', [BIN, 'check', '--redis', tls.url, '--depth', '3', ...SMALL_ARGS, '--continue', '--json', '--db', join(tmp, 'tls.db')], env);
      expect(await c.exit, c.err()).toBe(0);
      expect(got(c.out())).toEqual(await expected(SMALL, 3, false));
      expect(w.err()).toMatch(/waiting for runs on rediss:\/\/\*\*\*@127\.0\.0\.1:\d+/);
      // Without the CA, the certificate is refused: a clear message, exit 3.
      const untrusted = mmcheck(['check', '--redis', tls.url, '--depth', '1', '--db', join(tmp, 'tls.db')]);
      expect(await untrusted.exit).toBe(3);
      expect(untrusted.err()).toMatch(/cannot reach Redis at rediss:\/\/\*\*\*@127\.0\.0\.1:\d+.*(certificate|self-signed|self signed)/i);
      for (const t of [c.err(), c.out(), w.err(), untrusted.err()]) expect(t).not.toContain(PASSWORD);
    } finally {
      await stop(w, tls.proc);
    }
  }, 120_000);
});

describe('credentials', () => {
  it('redactUrls hides user and password of redis:// and rediss:// URLs; parseRedisUrl keeps them for the connection only', () => {
    expect(redactUrls('check --redis rediss://alice:s3cr%40t@host:6380/2 --depth 3')).toBe('check --redis rediss://***@host:6380/2 --depth 3');
    const t = parseRedisUrl('rediss://alice:s3cr%40t@example.org:6380/2');
    expect(t.display).toBe('rediss://***@example.org:6380/2');
    expect(t.options).toMatchObject({ host: 'example.org', port: 6380, username: 'alice', password: 's3cr@t', db: 2, tls: { servername: 'example.org' } });
    expect(parseRedisUrl('redis://127.0.0.1').display).toBe('redis://127.0.0.1');
  });
});

describe("the bench's distributed row", () => {
  it('without redis-server on PATH the row is skipped, saying so, and the bench does not fail', async () => {
    const empty = mkdtempSync(join(tmp, 'path-'));
    const b = start(process.execPath, [BIN, 'bench', '--only', 'distributed', '--json'], { PATH: empty });
    expect(await b.exit, b.err()).toBe(0);
    const { distributed } = JSON.parse(b.out()) as { distributed: { skipped?: string } };
    expect(distributed.skipped).toMatch(/redis-server is not installed/);
  }, 60_000);
});
