// Before any test: compile the sources to dist/ when they changed since the
// last build (scripts/build.mjs), so that the tests that run the CLI run it
// as users do after `npm ci`, without tsx's second and a half at every
// start. Building here, before the test files start, means no test runs the
// CLI while dist/ is being swapped.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
// @ts-expect-error plain JavaScript module without types
import { distFreshness, ROOT } from '../bin/typescript.mjs';

export default async function setup(): Promise<void> {
  if ((distFreshness as (root: string, dist: string) => boolean)(ROOT as string, join(ROOT as string, 'dist'))) return;
  await promisify(execFile)(process.execPath, [join(ROOT as string, 'scripts', 'build.mjs')]);
}
