// Model variants (DESIGN.md §6): a variant names its base and replaces some
// kernel functions, with access to the base's versions. Built-in variants
// register here by name; resolveKernel builds the function table.
import { mainlineKernel, type Kernel } from '../mm/kernel.ts';
import { lockSteps, registerLockSteps, type Step } from '../mm/sched.ts';

export interface Variant {
  /** Name used with --model. */
  name: string;
  /** 'mainline' or another variant's name. */
  base: string;
  /** One line for `mmcheck models`. */
  description: string;
  /** The replacement functions; `base` is the base's table (call its originals through it). */
  overrides(base: Kernel): Partial<Kernel>;
  /**
   * The steps of the variant's own lock points (optional; models/mm/sched.ts):
   * pc -> the step that resumes a thread suspended by lock_point(c, pc). A
   * pc of mainline's (move_page_tables, move_ptes, ...) takes that lock
   * point over on the paths the variant replaced; without it, a variant
   * replacing a function above a mainline lock point runs that path whole at
   * lock granularity. Inherited from the base variant, which a step of the
   * same pc replaces.
   */
  steps?: Readonly<Record<string, Step>>;
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
  const steps = { ...lockSteps(base), ...v.steps };
  for (const [pc, step] of Object.entries(steps)) if (typeof step !== 'function') throw new Error(`variant "${v.name}": step "${pc}" is not a function`);
  const k = Object.freeze({ ...base, ...over });
  if (Object.keys(steps).length > 0) registerLockSteps(k, steps);
  return k;
}
