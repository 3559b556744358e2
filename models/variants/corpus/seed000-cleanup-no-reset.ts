// Seed 000: the ENOMEM partial-clone path of the 2026 cleanup. An earlier
// mm-tree revision of cleanup_partial_anon_vmas freed the AVCs but left
// dst->anon_vma set (digest §2.4 step 7); for dup_anon_vma's attached,
// unfaulted dst that leaves an anon_vma with an empty chain.
import { vma } from '../../mm/ctx.ts';
import { mmap_assert_locked } from '../../mm/locks.ts';
import type { Variant } from '../registry.ts';

export const seed000CleanupNoReset: Variant = {
  name: 'seed000-cleanup-no-reset',
  base: 'mainline',
  description: 'seed 000: cleanup_partial_anon_vmas frees the AVCs but keeps dst->anon_vma (an mm-tree revision before 7.0)',
  overrides: () => ({
    cleanup_partial_anon_vmas(c, vmaId) {
      const v = vma(c, vmaId);
      mmap_assert_locked(c, v.mm, 'cleanup_partial_anon_vmas');
      for (const id of v.chain) c.k.anon_vma_chain_free(c, id);
      v.chain = [];
    },
  }),
};
