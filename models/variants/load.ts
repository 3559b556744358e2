// Loading a variant by name or from a file (DESIGN.md §6). A variant file is
// a .ts, .mts or .js module whose default export is a Variant (registry.ts);
// TypeScript loads at run time through tsx, with no build step. Anything
// wrong with the file is a VariantError with one line naming the file, the
// problem and, where known, the line.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Kernel } from '../mm/kernel.ts';
import { findVariant, MAINLINE, resolveKernel, type Variant } from './registry.ts';
import './builtin.ts';

export class VariantError extends Error {
  override name = 'VariantError';
}

export interface LoadedModel {
  name: string;
  description: string;
  kernel: Kernel;
  /** The file it came from, for workers and the database. */
  file?: string;
}

/** --model names a file (rather than a built-in variant). */
export const isVariantFile = (spec: string): boolean => /\.(ts|mts|js|mjs)$/.test(spec) || spec.includes('/');

/** The line of the first "file:line:col" in an error's message or stack, as " (line N)". */
/** message and stack of anything thrown (errors from another realm are not instanceof Error). */
function errorText(err: unknown): { message: string; stack: string } {
  if (typeof err === 'object' && err !== null && 'message' in err) {
    const e = err as { message: unknown; stack?: unknown };
    return { message: String(e.message), stack: String(e.stack ?? '') };
  }
  return { message: String(err), stack: '' };
}

function lineOf(err: unknown, file: string): string {
  const { message, stack } = errorText(err);
  const text = `${message}\n${stack}`;
  const base = file.split('/').pop()!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`${base}:(\\d+):\\d+`).exec(text) ?? /:(\d+):(\d+)/.exec(text);
  return m ? ` (line ${m[1]})` : '';
}

/** The informative line of an error: esbuild's "file:l:c: ERROR: what", else the first line. */
function firstLine(err: unknown): string {
  const msg = errorText(err).message;
  const lines = msg.split('\n').filter((l) => l.trim() !== '');
  const esbuild = lines.find((l) => l.includes('ERROR:'));
  return (esbuild ?? lines[0] ?? msg).replace(/^.*ERROR:\s*/, '').trim();
}

function checkShape(file: string, v: unknown): Variant {
  if (typeof v !== 'object' || v === null) throw new VariantError(`${file}: the default export must be a variant object { name, base, description, overrides }`);
  const o = v as Record<string, unknown>;
  for (const [key, type] of [['name', 'string'], ['base', 'string'], ['description', 'string'], ['overrides', 'function']] as const) {
    if (typeof o[key] !== type) throw new VariantError(`${file}: the variant's "${key}" must be a ${type}`);
  }
  if (o.steps !== undefined && (typeof o.steps !== 'object' || o.steps === null)) throw new VariantError(`${file}: the variant's "steps" must be an object of step functions by pc`);
  return o as unknown as Variant;
}

/** Resolve --model: a built-in name, or a path to a variant file. */
export async function loadModel(spec: string): Promise<LoadedModel> {
  if (!isVariantFile(spec)) {
    if (spec === MAINLINE) return { name: MAINLINE, description: 'Linux 7.x mainline (the digest)', kernel: resolveKernel(MAINLINE) };
    const v = findVariant(spec);
    if (v === undefined) throw new VariantError(`unknown model "${spec}": see \`mmcheck models\`, or give a path to a variant file`);
    return { name: v.name, description: v.description, kernel: resolveKernel(v) };
  }
  const file = resolve(spec);
  if (!existsSync(file)) throw new VariantError(`${spec}: no such variant file`);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw new VariantError(`${spec}: cannot load: ${firstLine(err)}${lineOf(err, file)}`);
  }
  const v = checkShape(spec, mod.default);
  try {
    return { name: v.name, description: v.description, kernel: resolveKernel(v), file };
  } catch (err) {
    throw new VariantError(`${spec}: ${firstLine(err)}`);
  }
}

/** The --model spec to record for a run: a file as an absolute path, so replay finds it from anywhere. */
export function recordedModelSpec(spec: string): string {
  return isVariantFile(spec) ? resolve(spec) : spec;
}
