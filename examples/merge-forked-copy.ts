import type { Variant } from '../models/variants/registry.ts';
import { NIL } from '../models/mm/state.ts';

const patch: Variant = {
  name: 'merge-forked-copy',
  base: 'mainline',
  description: 'let mremap merge a moved fork child into an unfaulted neighbour',
  overrides: (base) => ({
    // vma.c is_mergeable_anon_vma without the copied_from test of 61f67c230a5e
    is_mergeable_anon_vma(c, g, mergeNext) {
      return base.is_mergeable_anon_vma(c, { ...g, copiedFrom: NIL }, mergeNext);
    },
  }),
};
export default patch;
