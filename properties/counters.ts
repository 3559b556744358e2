// The anon_vma counters: num_active_vmas, num_children and refcount as the
// structure defines them (kernel-semantics §1.3, §7.3 I6; bug-corpus §0.3 I4).
import type { Property } from '../src/engine/model.ts';
import { type AnonVma, type Id, type State } from '../models/mm/state.ts';
import { avName, liveAnonVmas, stateView } from './util.ts';

export interface Counters {
  refcount: number;
  numChildren: number;
  numActiveVmas: number;
}

/**
 * The counters of anon_vma `id` derived from the structure (I6), exact at a
 * quiescent state of this model (no transient references between syscalls):
 *  - num_active_vmas = #VMAs whose anon_vma is A;
 *  - num_children = #{B not freed, B != A, B.parent == A, B's tree non-empty}
 *    + (A is a root with a non-empty tree ? 1 : 0)  (the self-parent link);
 *  - refcount = (tree non-empty ? 1 : 0)
 *    + (A is a root ? #{non-root B not freed with B.root == A} : 0).
 */
export function i6Counters(s: State, id: Id): Counters {
  const a = s.anonVmas[id];
  if (a === undefined) throw new Error(`i6Counters: no anon_vma ${id}`);
  const treeNonEmpty = a.tree.length > 0;
  const isRoot = a.root === a.id;
  let numActiveVmas = 0;
  for (const v of stateView(s).vmas) if (v.anonVma === id) numActiveVmas++;
  let numChildren = isRoot && treeNonEmpty ? 1 : 0;
  let refcount = treeNonEmpty ? 1 : 0;
  for (const b of stateView(s).anonVmas) {
    if (b.freed || b.id === id) continue;
    if (b.parent === id && b.tree.length > 0) numChildren++;
    if (isRoot && b.root === id) refcount++;
  }
  return { refcount, numChildren, numActiveVmas };
}

const FIELDS: (keyof Counters)[] = ['numActiveVmas', 'numChildren', 'refcount'];
const KERNEL_NAME: Record<keyof Counters, string> = {
  numActiveVmas: 'num_active_vmas',
  numChildren: 'num_children',
  refcount: 'refcount',
};

export const countersExact: Property<State> = {
  id: 'counters-exact',
  description: 'num_active_vmas, num_children and refcount of every live anon_vma equal their structural definition; none negative',
  rule: 'I6, kernel-semantics §7.3, §1.3 (anon_vma_fork, __anon_vma_prepare, unlink_anon_vmas, __put_anon_vma)',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    for (const a of liveAnonVmas(s)) {
      const want = i6Counters(s, a.id);
      for (const f of FIELDS) {
        const got = (a as AnonVma)[f];
        if (got < 0) out.push(`${avName(a.id)}: ${KERNEL_NAME[f]} is negative (${got})`);
        else if (got !== want[f]) out.push(`${avName(a.id)}: ${KERNEL_NAME[f]} is ${got}, expected ${want[f]}`);
      }
    }
    return out;
  },
};
