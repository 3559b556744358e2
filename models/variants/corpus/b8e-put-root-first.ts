// B8e (bug-corpus.md): before 624483f3ea82 (2014), __put_anon_vma dropped the
// child's pin on the root (possibly freeing the root) before freeing the
// child, whose anon_vma_free still looks at root->rwsem.
import { av } from '../../mm/ctx.ts';
import type { Variant } from '../registry.ts';

export const b8ePutRootFirst: Variant = {
  name: 'b8e-put-root-first',
  base: 'mainline',
  description: 'B8e: __put_anon_vma drops the root reference before freeing the child (before 624483f3ea82)',
  overrides: (base) => ({
    __put_anon_vma(c, id) {
      const root = av(c, id, '__put_anon_vma').root;
      if (root !== id) {
        const r = av(c, root, '__put_anon_vma(root)');
        r.refcount--;
        if (r.refcount === 0) c.k.anon_vma_free(c, root);
      }
      base.anon_vma_free(c, id);
    },
  }),
};
