// Bugs only the issue-13 properties see: the anon_vma structures stay
// consistent, what the user reads (user-view) or what a failed call leaves
// (failure-atomic) does not. Written for the corpus, not historical commits;
// each fixed variant is mainline.
import { folio } from '../../mm/ctx.ts';
import { USER_ZERO } from '../../mm/state.ts';
import type { Variant } from '../registry.ts';

/**
 * UV1: fork gives the child its own copy of a pinned page (copy_present_page,
 * §2.7), mapped and counted exactly as mainline, but never copies the
 * content (copy_user_highpage left out): the child reads zeros where its
 * parent wrote.
 */
export const uv1ForkCopyNoData: Variant = {
  name: 'uv1-fork-copy-no-data',
  base: 'mainline',
  description: 'UV1: copy_present_page maps a fresh folio in the child without copying the pinned page into it',
  overrides: (base) => ({
    copy_present_page(c, dstVmaId, page, srcFolio, sub) {
      const ret = base.copy_present_page(c, dstVmaId, page, srcFolio, sub);
      const pte = ret === 0 ? c.s.mms[c.s.vmas[dstVmaId]!.mm]!.ptes[page] : undefined;
      if (pte !== undefined) folio(c, pte.folio).data = [USER_ZERO];
      return ret;
    },
  }),
};

/**
 * UV2: dup_anon_vma (§3.2) does not tell its caller which VMA it linked, so
 * when commit_merge then fails with ENOMEM the merge's abort path has
 * nothing to unlink: mprotect fails, and the neighbour keeps the anon_vma
 * links the failed merge gave it. Every single-state invariant holds (the
 * links are complete and counted); only the comparison with the state
 * before the call shows it.
 */
export const uv2MergeAbortKeepsDup: Variant = {
  name: 'uv2-merge-abort-keeps-dup',
  base: 'mainline',
  description: 'UV2: a merge that fails after dup_anon_vma leaves the duplicate linked (dup_anon_vma reports no dup)',
  overrides: (base) => ({
    dup_anon_vma(c, dst, src) {
      const [err] = base.dup_anon_vma(c, dst, src);
      return [err, -1];
    },
  }),
};
