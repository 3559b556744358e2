// The table of kernel functions. Every call between modelled kernel
// functions goes through it (c.k.fn(c, ...)), so a variant that replaces one
// function (say maybe_reuse_anon_vma) changes it for every caller
// (DESIGN.md §6). Only functions are listed; constants and types stay in
// their modules.
import * as memory from './memory.ts';
import * as migrate from './migrate.ts';
import * as mmap from './mmap.ts';
import * as mprotect from './mprotect.ts';
import * as mremap from './mremap.ts';
import * as rmap from './rmap.ts';
import * as vma from './vma.ts';
import { registerMainline } from './sched.ts';

function functionsOf<T extends object>(mod: T): { [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] } {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(mod)) if (typeof value === 'function') out[name] = value;
  return out as never;
}

export const mainlineKernel = Object.freeze({
  ...functionsOf(rmap),
  ...functionsOf(vma),
  ...functionsOf(memory),
  ...functionsOf(mmap),
  ...functionsOf(mprotect),
  ...functionsOf(mremap),
  ...functionsOf(migrate),
});

registerMainline(mainlineKernel);

export type Kernel = typeof mainlineKernel;
export type KernelFunctionName = keyof Kernel;
