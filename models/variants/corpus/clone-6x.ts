// anon_vma_clone and anon_vma_fork as they were before the 2026 cleanup
// (digest §8): one loop over src's chain from oldest to newest that
// allocates each AVC, links it at dst's head and inserts it in the tree
// under the root lock, choosing a fork reuse candidate as it goes; on
// ENOMEM, unlink_anon_vmas(dst). Historical variants build on these.
import { av, avc, vma, warn, type Ctx } from '../../mm/ctx.ts';
import { anon_vma_lock_write, anon_vma_unlock_write } from '../../mm/locks.ts';
import { ENOMEM, type VmaOperation } from '../../mm/rmap.ts';
import { NIL, type Id } from '../../mm/state.ts';

export interface Clone6xRules {
  /** May a fork adopt anon_vma avId while cloning srcId into dstId? */
  reuse(c: Ctx, dstId: Id, srcId: Id, avId: Id): boolean;
  /** The ENOMEM path: what is done with the half-built dst. */
  onEnomem(c: Ctx, dstId: Id): void;
  /** Called once dst->anon_vma is final (the counter increments of that era). */
  onActive(c: Ctx, anonVma: Id): void;
}

/** anon_vma_clone (6.x): list_for_each_entry_reverse over src, anon_vma_chain_link each. */
export function anon_vma_clone_6x(c: Ctx, dstId: Id, srcId: Id, op: VmaOperation, rules: Clone6xRules): number {
  const src = vma(c, srcId);
  const chain = [...src.chain].reverse();
  let locked = NIL;
  for (const pavcId of chain) {
    const anon = avc(c, pavcId).anonVma;
    const id = c.k.anon_vma_chain_alloc(c);
    if (id === NIL) {
      if (locked !== NIL) anon_vma_unlock_write(c, locked);
      rules.onEnomem(c, dstId);
      return ENOMEM;
    }
    if (locked === NIL) {
      locked = anon;
      anon_vma_lock_write(c, locked);
    }
    c.k.anon_vma_chain_assign(c, dstId, id, anon);
    c.k.anon_vma_interval_tree_insert(c, id, anon);
    if (op === 'FORK' && vma(c, dstId).anonVma === NIL && src.anonVma !== NIL && rules.reuse(c, dstId, srcId, anon)) vma(c, dstId).anonVma = anon;
  }
  if (locked !== NIL) anon_vma_unlock_write(c, locked);
  const dstAnon = vma(c, dstId).anonVma;
  if (dstAnon !== NIL) {
    av(c, dstAnon, 'anon_vma_clone').numActiveVmas++;
    rules.onActive(c, dstAnon);
  }
  return 0;
}

/** anon_vma_fork (6.x): clone first; only without reuse allocate the child's own anon_vma. */
export function anon_vma_fork_6x(c: Ctx, vmaId: Id, pvmaId: Id, onNewChild: (c: Ctx, anonVma: Id) => void): number {
  if (vma(c, pvmaId).anonVma === NIL) return 0;
  vma(c, vmaId).anonVma = NIL;
  const err = c.k.anon_vma_clone(c, vmaId, pvmaId, 'FORK');
  if (err !== 0) return err;
  if (vma(c, vmaId).anonVma !== NIL) return 0;
  const anon = c.k.anon_vma_alloc(c);
  if (anon === NIL) {
    c.k.unlink_anon_vmas(c, vmaId);
    return ENOMEM;
  }
  const avcId = c.k.anon_vma_chain_alloc(c);
  if (avcId === NIL) {
    c.k.put_anon_vma(c, anon);
    c.k.unlink_anon_vmas(c, vmaId);
    return ENOMEM;
  }
  const a = av(c, anon, 'anon_vma_fork');
  const pAnon = vma(c, pvmaId).anonVma;
  a.numActiveVmas = 1;
  a.root = av(c, pAnon, 'anon_vma_fork(parent)').root;
  a.parent = pAnon;
  c.k.get_anon_vma(c, a.root);
  vma(c, vmaId).anonVma = anon;
  anon_vma_lock_write(c, anon);
  c.k.anon_vma_chain_assign(c, vmaId, avcId, anon);
  c.k.anon_vma_interval_tree_insert(c, avcId, anon);
  av(c, pAnon, 'anon_vma_fork(parent)').numChildren++;
  onNewChild(c, anon);
  anon_vma_unlock_write(c, anon);
  return 0;
}

/** unlink_anon_vmas (6.x): no early return for an unfaulted VMA; the chain is walked whatever dst->anon_vma is. */
export function unlink_anon_vmas_6x(c: Ctx, vmaId: Id): void {
  const v = vma(c, vmaId);
  let locked = NIL;
  const kept: Id[] = [];
  for (const id of v.chain) {
    const target = avc(c, id).anonVma;
    if (locked === NIL) {
      locked = target;
      anon_vma_lock_write(c, locked);
    }
    c.k.anon_vma_interval_tree_remove(c, id, target);
    const a = av(c, target, 'unlink_anon_vmas');
    if (a.tree.length === 0) {
      av(c, a.parent, 'unlink_anon_vmas(parent)').numChildren--;
      kept.push(id);
    } else c.k.anon_vma_chain_free(c, id);
  }
  v.chain = kept;
  if (v.anonVma !== NIL) {
    av(c, v.anonVma, 'unlink_anon_vmas').numActiveVmas--;
    v.anonVma = NIL;
  }
  if (locked !== NIL) anon_vma_unlock_write(c, locked);
  for (const id of kept) {
    const target = avc(c, id).anonVma;
    const a = av(c, target, 'unlink_anon_vmas');
    if (a.numChildren !== 0 || a.numActiveVmas !== 0) warn(c, 'unlink_anon_vmas: emptied anon_vma still has children or active vmas');
    c.k.put_anon_vma(c, target);
    c.k.anon_vma_chain_free(c, id);
  }
  vma(c, vmaId).chain = [];
}
