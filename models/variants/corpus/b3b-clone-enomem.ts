// B3b (bug-corpus.md): before 3fe89b3e2a7b (2015), anon_vma_clone's ENOMEM
// path called unlink_anon_vmas(dst) with dst->anon_vma still set (copied by
// vm_area_dup), decrementing a counter never incremented for dst. Both
// variants use the 6.x clone loop; the fix clears dst->anon_vma first.
import { vma } from '../../mm/ctx.ts';
import { NIL } from '../../mm/state.ts';
import type { Variant } from '../registry.ts';
import { anon_vma_clone_6x, anon_vma_fork_6x, unlink_anon_vmas_6x, type Clone6xRules } from './clone-6x.ts';

const reuse2022: Clone6xRules['reuse'] = (c, _dst, _src, avId) => {
  const a = c.s.anonVmas[avId]!;
  return a.numChildren < 2 && a.numActiveVmas === 0;
};

export const b3bCloneEnomemBuggy: Variant = {
  name: 'b3b-clone-enomem',
  base: 'mainline',
  description: 'B3b: 6.x anon_vma_clone whose ENOMEM path unlinks dst with dst->anon_vma still set (before 3fe89b3e2a7b)',
  overrides: () => ({
    anon_vma_clone: (c, dst, src, op) =>
      anon_vma_clone_6x(c, dst, src, op, { reuse: reuse2022, onEnomem: (cc, d) => cc.k.unlink_anon_vmas(cc, d), onActive: () => {} }),
    anon_vma_fork: (c, v, p) => anon_vma_fork_6x(c, v, p, () => {}),
    unlink_anon_vmas: unlink_anon_vmas_6x,
  }),
};

export const b3bCloneEnomemFixed: Variant = {
  name: 'b3b-clone-enomem-fixed',
  base: 'mainline',
  description: 'B3b fixed: 6.x anon_vma_clone, ENOMEM path clears dst->anon_vma before unlinking (3fe89b3e2a7b)',
  overrides: () => ({
    anon_vma_clone: (c, dst, src, op) =>
      anon_vma_clone_6x(c, dst, src, op, {
        reuse: reuse2022,
        onEnomem: (cc, d) => {
          vma(cc, d).anonVma = NIL;
          cc.k.unlink_anon_vmas(cc, d);
        },
        onActive: () => {},
      }),
    anon_vma_fork: (c, v, p) => anon_vma_fork_6x(c, v, p, () => {}),
    unlink_anon_vmas: unlink_anon_vmas_6x,
  }),
};
