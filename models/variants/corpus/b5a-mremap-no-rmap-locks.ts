// B5a (bug-corpus.md): before 948f017b093a (2011), mremap's move_ptes took
// only the page-table locks. Safety rested on rmap order (the source VMA
// before the destination), which a copy_vma that merged the destination into
// an earlier VMA broke. Modelled as need_rmap_locks never set: copy_vma is
// mainline's, and its answer is ignored, so move_ptes runs without the
// anon_vma lock while a walker can be between the two VMAs.
import type { Variant } from '../registry.ts';

export const b5aMremapNoRmapLocks: Variant = {
  name: 'b5a-mremap-no-rmap-locks',
  base: 'mainline',
  description: 'B5a: move_ptes without the anon_vma lock even when copy_vma merged the destination before the source (before 948f017b093a)',
  overrides: (base) => ({
    copy_vma(c, vmaId, addr, len, pgoff, relocate) {
      const r = base.copy_vma(c, vmaId, addr, len, pgoff, relocate);
      return r === null ? null : { ...r, needRmapLocks: false };
    },
  }),
};
