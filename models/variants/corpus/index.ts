// The bug corpus (docs/bug-corpus.md, seeds 000 and 001) as checkable
// entries: a buggy variant, its fixed variant, the property the bug breaks,
// and the bounds at which the buggy one is caught. `mmcheck bugs` checks
// that each buggy variant violates its property within the bounds and that
// the fixed one keeps it at the same bounds.
import type { Bounds } from '../../mm/model.ts';

export interface BugEntry {
  id: string;
  title: string;
  buggy: string;
  fixed: string;
  /** The property the bug breaks (checked alone, so the shortest violation of it is found). */
  property: string;
  bounds: Partial<Bounds>;
  depth: number;
  /** A prefix the search starts from, when the bug is out of reach from the empty state. */
  from?: string;
  /** What the checker found, for the table. */
  note: string;
}

export const BUG_CORPUS: readonly BugEntry[] = [
  {
    id: 'B1a',
    title: 'anon_vma_prepare reuse without the singular-chain rule (d0e9fe1758f2)',
    buggy: 'b1a-prepare-reuse-2010',
    fixed: 'mainline',
    property: 'rmap-coverage',
    bounds: { procs: 2, pages: 2, maxLen: 2 },
    depth: 6,
    note: 'mmap, fault, fork, child maps the neighbour page and faults (adopts the parent-linked anon_vma), mprotect merges: the parent anon_vma drops off the chain',
  },
  {
    id: 'seed001',
    title: "2010 merge of VMAs with differing chains; Johannes Weiner's anon_vma_merge",
    buggy: 'seed001-merge-drops-chain',
    fixed: 'seed001-anon-vma-merge',
    property: 'rmap-coverage',
    bounds: { procs: 2, pages: 2, maxLen: 2 },
    depth: 6,
    note: 'same trace as B1a; the seed-001 merge moves the lost AVCs to the survivor (I5 stays broken, coverage holds)',
  },
  {
    id: 'B2',
    title: 'CVE-2022-42703: degree ambiguity, double reuse (2555283eb40d)',
    buggy: 'b2-degree',
    fixed: 'b2-degree-fixed',
    property: 'same-anon-vma-same-chain',
    bounds: { procs: 4, pages: 2, maxLen: 2 },
    depth: 12,
    from: 'P0 mmap 0 2; P0 fault 0 w; P0 fork; P1 fork; P2 fork; P1 exit; P2 exit; P3 mprotect 1 1 rwx',
    note: 'from an 8-operation prefix the checker finds fork, fork, exit, fork: the last fork adopts one anon_vma for both VMAs',
  },
  {
    id: 'B3b',
    title: 'ENOMEM in anon_vma_clone unlinks dst with dst->anon_vma set (3fe89b3e2a7b)',
    buggy: 'b3b-clone-enomem',
    fixed: 'b3b-clone-enomem-fixed',
    property: 'counters-exact',
    bounds: { procs: 1, pages: 2, maxLen: 1, enomem: 1 },
    depth: 3,
    note: 'mmap, fault, then an mremap whose copy_vma clone fails: num_active_vmas is decremented for a VMA that never counted',
  },
  {
    id: 'seed000',
    title: 'cleanup_partial_anon_vmas without resetting dst->anon_vma (seed 000, pre-7.0 mm tree)',
    buggy: 'seed000-cleanup-no-reset',
    fixed: 'mainline',
    property: 'own-anon-vma-linked',
    bounds: { procs: 1, pages: 3, maxLen: 2, enomem: 1 },
    depth: 4,
    note: 'an mprotect merge that dups into an unfaulted neighbour fails in clone: the neighbour keeps anon_vma with an empty chain',
  },
  {
    id: 'B5a',
    title: 'mremap moves PTEs without the anon_vma lock when the destination precedes the source (948f017b093a)',
    buggy: 'b5a-mremap-no-rmap-locks',
    fixed: 'mainline',
    property: 'walker-sees-every-mapping',
    bounds: { procs: 1, pages: 4, maxLen: 1, ops: ['mmap', 'fault', 'mremap', 'munmap'], granularity: 'lock', walkers: 1 },
    depth: 11,
    from: 'P0 mmap 0 2; P0 fault 1 w; P0 mremap 1 1 3 1 maymove,fixed; P0 step; P0 step',
    note: 'lock granularity: the page moved away and back; copy_vma merges the destination into the VMA first in the tree; a try_to_unmap walker visits it, the PTE moves behind the walker, the source is empty',
  },
  {
    id: 'VL1',
    title: 'a new VMA linked into the tree before vma_start_write: a per-VMA-lock fault races mremap (mm: always lock new vma before inserting into vma tree, 2023)',
    buggy: 'vl1-vma-link-unlocked',
    fixed: 'mainline',
    property: 'kernel-asserts',
    bounds: { procs: 1, pages: 2, maxLen: 1, ops: ['mmap', 'fault', 'munmap', 'mremap'], granularity: 'lock', walkers: 0, threads: 2 },
    depth: 8,
    note: "mmap, fault, mremap links the destination VMA unlocked, a second thread's read fault maps the zero page there under the VMA lock, move_ptes finds the destination PTE present",
  },
  {
    id: 'B8e',
    title: '__put_anon_vma frees the root before the child (624483f3ea82)',
    buggy: 'b8e-put-root-first',
    fixed: 'mainline',
    property: 'no-use-after-free',
    bounds: { procs: 3, pages: 1, maxLen: 1, ops: ['mmap', 'fault', 'fork', 'exit'] },
    depth: 7,
    note: "needs a grandchild: 7.x reverses chains on clone, so the grandchild's unlink puts the root before its parent",
  },
  {
    id: 'B4',
    title: 'MREMAP_RELOCATE_ANON with the num_children test alone (RFC v2 review)',
    buggy: 'relocate-children-only',
    fixed: 'relocate-rfc-v2',
    property: 'rmap-coverage',
    bounds: { procs: 3, pages: 2, maxLen: 1, relocate: true, ops: ['mmap', 'fault', 'fork', 'mremap', 'exit'] },
    depth: 6,
    note: 'a fork child relocates its shared folio (WARN, skipped, left unreachable); with the parents test first (v2) nothing is found at these bounds',
  },
  {
    id: 'UV1',
    title: 'fork copies a pinned page without its content (issue 13; copy_present_page without copy_user_highpage)',
    buggy: 'uv1-fork-copy-no-data',
    fixed: 'mainline',
    property: 'user-view',
    bounds: { procs: 2, pages: 1, maxLen: 1, ops: ['mmap', 'fault', 'pin', 'fork'] },
    depth: 4,
    note: 'mmap, write, pin, fork: the child gets its own folio, rmap-consistent, holding zeros instead of what the parent wrote',
  },
  {
    id: 'UV2',
    title: 'a merge aborted by ENOMEM leaves the dup_anon_vma duplicate linked (issue 13)',
    buggy: 'uv2-merge-abort-keeps-dup',
    fixed: 'mainline',
    property: 'failure-atomic',
    bounds: { procs: 1, pages: 3, maxLen: 2, enomem: 1 },
    depth: 4,
    note: 'mprotect of a faulted page towards an unfaulted neighbour fails in commit_merge: the neighbour keeps the anon_vma, consistently linked and counted',
  },
];

/** Entries that need parts of the model not built yet (none now; kept for the next ones). */
export const BUG_CORPUS_PENDING: readonly { id: string; needs: string }[] = [];
