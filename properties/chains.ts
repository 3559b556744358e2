// The VMA <-> anon_vma graph: anon_vma_chain lists and interval trees
// (kernel-semantics §1.4, §7.3 I1-I5, I10; bug-corpus §0.3 I3).
import type { Property } from '../src/engine/model.ts';
import { NIL, vmaPages, type Id, type State, type Vma } from '../models/mm/state.ts';
import { avName, avcName, chainAnonVmas, chainNames, vmaName, stateView } from './util.ts';

export const chainTreeConsistent: Property<State> = {
  id: 'chain-tree-consistent',
  description: "an AVC is on its VMA's chain iff it is in its anon_vma's interval tree",
  rule: 'I1, kernel-semantics §7.3, §1.4 (anon_vma_chain_assign + anon_vma_interval_tree_insert)',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    const onChain = new Set<Id>();
    for (const v of stateView(s).vmas) {
      for (const id of v.chain) {
        onChain.add(id);
        const c = s.avcs[id];
        if (c === undefined) {
          out.push(`${vmaName(s, v.id)}: chain holds AVC${id}, which does not exist`);
          continue;
        }
        if (c.vma !== v.id) out.push(`${vmaName(s, v.id)}: chain holds ${avcName(s, id)}, which belongs to ${vmaName(s, c.vma)}`);
        const a = s.anonVmas[c.anonVma];
        if (!c.inTree || a === undefined || !a.tree.includes(id))
          out.push(`${vmaName(s, v.id)}: ${avcName(s, id)} is on the chain but not in ${avName(c.anonVma)}'s tree`);
      }
    }
    const inTree = new Set<Id>();
    for (const a of stateView(s).anonVmas) {
      for (const id of a.tree) {
        if (inTree.has(id)) out.push(`${avName(a.id)}: ${avcName(s, id)} is in a tree twice`);
        inTree.add(id);
        const c = s.avcs[id];
        if (c === undefined) {
          out.push(`${avName(a.id)}: tree holds AVC${id}, which does not exist`);
          continue;
        }
        if (c.anonVma !== a.id) out.push(`${avName(a.id)}: tree holds ${avcName(s, id)}, which points to ${avName(c.anonVma)}`);
        if (!c.inTree) out.push(`${avName(a.id)}: tree holds ${avcName(s, id)}, whose inTree flag is clear`);
        const v = s.vmas[c.vma];
        if (v === undefined || !v.chain.includes(id))
          out.push(`${avName(a.id)}: ${avcName(s, id)} is in the tree but not on ${vmaName(s, c.vma)}'s chain`);
      }
    }
    for (const c of stateView(s).avcs)
      if (!onChain.has(c.id) && !inTree.has(c.id)) out.push(`${avcName(s, c.id)} is on no chain and in no tree (leaked)`);
    return out;
  },
};

export const ownAnonVmaLinked: Property<State> = {
  id: 'own-anon-vma-linked',
  description: "vma->anon_vma is set iff the VMA's chain is non-empty, and the chain holds an AVC to vma->anon_vma",
  rule: 'I2, kernel-semantics §7.3, §2.2, §7.1 (unlink_anon_vmas WARN: !anon_vma => empty chain)',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    for (const v of stateView(s).vmas) {
      if (v.anonVma === NIL) {
        if (v.chain.length > 0) out.push(`${vmaName(s, v.id)}: anon_vma is NULL but the chain is ${chainNames(s, v)}`);
        continue;
      }
      if (v.chain.length === 0) out.push(`${vmaName(s, v.id)}: anon_vma is ${avName(v.anonVma)} but the chain is empty`);
      else if (!chainAnonVmas(s, v).includes(v.anonVma))
        out.push(`${vmaName(s, v.id)}: anon_vma ${avName(v.anonVma)} is not in its chain ${chainNames(s, v)}`);
    }
    return out;
  },
};

export const singleRoot: Property<State> = {
  id: 'single-root',
  description: "all anon_vmas on a VMA's chain share one root, and that root is on the chain",
  rule: 'I3, kernel-semantics §7.3, §1.3 (anon_vma_clone: "all anon_vma\'s share the same root")',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    for (const v of stateView(s).vmas) {
      if (v.chain.length === 0) continue;
      const chain = chainAnonVmas(s, v);
      if (chain.length === 0) continue;
      const roots: Id[] = [];
      for (const a of chain) {
        const r = s.anonVmas[a]?.root ?? NIL;
        if (!roots.includes(r)) roots.push(r);
      }
      if (roots.length > 1) {
        out.push(`${vmaName(s, v.id)}: chain ${chainNames(s, v)} has several roots ${roots.map(avName).join(', ')}`);
        continue;
      }
      if (!chain.includes(roots[0]!))
        out.push(`${vmaName(s, v.id)}: root ${avName(roots[0]!)} of chain ${chainNames(s, v)} is not on the chain`);
    }
    return out;
  },
};

export const chainClosedUnderParent: Property<State> = {
  id: 'chain-closed-under-parent',
  description: "an anon_vma on a VMA's chain has its parent on the chain too",
  rule: 'I4, kernel-semantics §7.3, §2.4, §2.5 (anon_vma_fork clones the whole parent chain)',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    for (const v of stateView(s).vmas) {
      const chain = chainAnonVmas(s, v);
      for (let i = 0; i < chain.length; i++) {
        const id = chain[i]!;
        if (chain.indexOf(id) !== i) continue;
        const a = s.anonVmas[id];
        if (a !== undefined && !chain.includes(a.parent))
          out.push(`${vmaName(s, v.id)}: ${avName(id)} is on chain ${chainNames(s, v)} but its parent ${avName(a.parent)} is not`);
      }
    }
    return out;
  },
};

export const sameAnonVmaSameChain: Property<State> = {
  id: 'same-anon-vma-same-chain',
  description: 'two VMAs with the same anon_vma link to the same set of anon_vmas',
  rule: 'I5, kernel-semantics §7.3, §2.3, §2.4 (is_mergeable_anon_vma, fork reuse needs num_active_vmas == 0); bug-corpus §0.3 I3',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    const first = new Map<Id, { vma: Id; set: Id[] }>();
    for (const v of stateView(s).vmas) {
      if (v.anonVma === NIL) continue;
      const set = linkedSet(s, v);
      const f = first.get(v.anonVma);
      if (f === undefined) first.set(v.anonVma, { vma: v.id, set });
      else if (f.set.length !== set.length || f.set.some((a, i) => a !== set[i]))
        out.push(
          `${vmaName(s, f.vma)} and ${vmaName(s, v.id)} share anon_vma ${avName(v.anonVma)} but link to {${f.set.map(avName).join(', ')}} and {${set.map(avName).join(', ')}}`,
        );
    }
    return out;
  },
};

/** The anon_vmas a VMA's chain links to, each once, ascending. */
function linkedSet(s: State, v: Vma): Id[] {
  const out: Id[] = [];
  for (const a of chainAnonVmas(s, v)) if (!out.includes(a)) out.push(a);
  return out.sort((a, b) => a - b);
}

export const treeKeysFresh: Property<State> = {
  id: 'tree-keys-fresh',
  description: "each in-tree AVC's key equals its VMA's live [pgoff, pgoff + pages - 1], and each tree is ordered by start",
  rule: 'I10, kernel-semantics §7.3, §1.4, §3.3 (anon_vma_interval_tree_pre/post_update_vma; validate_mm with DEBUG_VM_RB)',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    for (const a of stateView(s).anonVmas) {
      let prev: { id: Id; start: number } | undefined;
      for (const id of a.tree) {
        const c = s.avcs[id];
        if (c === undefined) continue;
        const v = s.vmas[c.vma];
        if (v !== undefined) {
          const last = v.pgoff + vmaPages(v) - 1;
          if (c.cachedStart !== v.pgoff || c.cachedLast !== last)
            out.push(
              `${avName(a.id)}: ${avcName(s, id)} is keyed [${c.cachedStart},${c.cachedLast}] but ${vmaName(s, v.id)} covers pgoff [${v.pgoff},${last}]`,
            );
        }
        if (prev !== undefined && c.cachedStart < prev.start)
          out.push(`${avName(a.id)}: tree out of order: ${avcName(s, id)} (start ${c.cachedStart}) after ${avcName(s, prev.id)} (start ${prev.start})`);
        prev = { id, start: c.cachedStart };
      }
    }
    return out;
  },
};
