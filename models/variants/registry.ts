// Model variants (DESIGN.md §6): a variant names its base and replaces some
// kernel functions, with access to the base's versions. Built-in variants
// register here by name; resolveKernel builds the function table.
import { mainlineKernel, type Kernel } from '../mm/kernel.ts';

export interface Variant {
  /** Name used with --model. */
  name: string;
  /** 'mainline' or another variant's name. */
  base: string;
  /** One line for `mmcheck models`. */
  description: string;
  /** The replacement functions; `base` is the base's table (call its originals through it). */
  overrides(base: Kernel): Partial<Kernel>;
}

const builtins = new Map<string, Variant>();

export const MAINLINE = 'mainline';

export function registerVariant(v: Variant): void {
  if (v.name === MAINLINE || builtins.has(v.name)) throw new Error(`variant "${v.name}" registered twice`);
  builtins.set(v.name, v);
}

export function builtinVariants(): Variant[] {
  return [...builtins.values()];
}

export function findVariant(name: string): Variant | undefined {
  return builtins.get(name);
}

/** Build the kernel table of a variant over its chain of bases. Throws Error naming an unknown base or function. */
export function resolveKernel(v: Variant | string, seen: Set<string> = new Set()): Kernel {
  if (typeof v === 'string') {
    if (v === MAINLINE) return mainlineKernel;
    const found = builtins.get(v);
    if (found === undefined) throw new Error(`unknown model "${v}" (try: ${[MAINLINE, ...builtins.keys()].join(', ')})`);
    v = found;
  }
  if (seen.has(v.name)) throw new Error(`variant "${v.name}" is its own base`);
  seen.add(v.name);
  const base = resolveKernel(v.base, seen);
  const over = v.overrides(base);
  for (const name of Object.keys(over)) {
    if (!(name in base)) throw new Error(`variant "${v.name}" overrides "${name}", which is not a kernel function of the model`);
    if (typeof (over as Record<string, unknown>)[name] !== 'function') throw new Error(`variant "${v.name}": override "${name}" is not a function`);
  }
  return Object.freeze({ ...base, ...over });
}
