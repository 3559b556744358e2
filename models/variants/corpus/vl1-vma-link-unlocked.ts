// VL1 (issue 17): before "mm: always lock new vma before inserting into vma
// tree" (2023, with per-VMA locks in 6.4), vma_link stored a new VMA in the
// mm's tree without vma_start_write. mremap's copy_vma links the destination
// VMA that way; until move_ptes moves the PTEs there, a page fault of
// another thread under the per-VMA lock (lock_vma_under_rcu) finds it
// unlocked and maps a page at the destination, which move_ptes then
// overwrites: its "destination pte not none" warning, and the page lost.
import { vma_attach } from '../../mm/vma.ts';
import type { Variant } from '../registry.ts';

export const vl1VmaLinkUnlocked: Variant = {
  name: 'vl1-vma-link-unlocked',
  base: 'mainline',
  description: 'VL1: vma_link inserts the new VMA without vma_start_write (before "mm: always lock new vma before inserting into vma tree", 2023)',
  overrides: () => ({
    vma_link(c, vmaId) {
      if (!c.k.vma_iter_prealloc(c)) return false;
      vma_attach(c, vmaId);
      return true;
    },
  }),
};
