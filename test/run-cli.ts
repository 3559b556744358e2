// Run the command line in a child process without blocking this thread.
// vitest's worker answers its RPC with the main process (onTaskUpdate) on
// this thread's event loop; a spawnSync that outlasts the RPC timeout on a
// busy machine fails the whole suite though every test passed (issue 14).
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '..', 'bin', 'mmcheck.js');

export interface Res {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the child after this long (a hung command fails its test rather than the suite). */
  timeoutMs?: number;
}

/** `node bin/mmcheck.js ...args`, resolved when it exits. */
export function runCli(args: readonly string[], o: RunCliOptions = {}): Promise<Res> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: o.cwd,
      env: o.env ?? { ...process.env, MMCHECK_DEBUG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 200_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}
