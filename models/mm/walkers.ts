// rmap walkers at lock granularity (kernel-semantics §2.12; issue 4):
// reclaim's try_to_unmap and folio_referenced as threads, one step per lock
// and one step per VMA of the interval tree; and migration's use of the
// anon_vma (issue 17): a reference held across a sleep, then a walk. A walker
// reads only what the kernel reads: folio->mapping, the anon_vma's root and
// refcount, the tree of that anon_vma at each step, vma_address, and PTEs
// under the PTL.
//
// A walker starts from its folio, as the kernel's do (shrink_folio_list,
// folio_referenced and migrate_pages take a folio off a list): the mapping
// that names it on the command line is not part of it.
//
// Locals: folios [the folio]; anonVmas [the locked anon_vma; migrate: the
// one folio_get_anon_vma pinned, then the locked one and the pinned one];
// nums [tree cursor, referenced: mappings left to find]; seen: the snapshot
// that walker-sees-every-mapping compares against (migrate: the mappings
// not found yet).
import { avR, folio, insert, peek, pteR, vmaR, warn, type Ctx } from './ctx.ts';
import { anon_vma_lock_read, anon_vma_unlock_read, folio_lock, folio_trylock, folio_unlock } from './locks.ts';
import { folio_put_last } from './memory.ts';
import { ANON_LOCK_CONTENDED } from './rmap.ts';
import { threadName } from './ops.ts';
import { ISSUED, emptyThread, type Step } from './sched.ts';
import { NIL, RECORD, ptePages, threadKey, WALKER_BASE, vmaPages, type Id, type State, type Thread, type WalkerKind } from './state.ts';

/** The (process, page of folio) pairs that map folioId. */
function mappingsOf(s: State, folioId: Id): { mm: Id; sub: number }[] {
  const out: { mm: Id; sub: number }[] = [];
  for (const key in s.mms) {
    const ptes = s.mms[key]!.ptes;
    for (const p of ptePages(ptes)) if (ptes[p]!.folio === folioId) out.push({ mm: Number(key), sub: ptes[p]!.sub });
  }
  return out;
}

/** The walker drops its folio reference (the folio is freed if nothing maps it) and ends. */
function walkerEnd(c: Ctx, t: Thread): boolean {
  const f = t.folios[0]!;
  t.folios = [];
  if (c.s.folios[f] !== undefined) folio_put_last(c, f);
  return true;
}

/** Unlock the anon_vma and the folio at the end of a walk (rmap_walk_anon's unlock; try_to_unmap's caller). */
function walkUnlock(c: Ctx, t: Thread): void {
  anon_vma_unlock_read(c, t.anonVmas[0]!);
  folio_unlock(c, t.folios[0]!);
}

/** The next AVC of the locked tree at or after the cursor whose VMA overlaps the folio's pages, or -1. */
function nextInTree(c: Ctx, t: Thread): number {
  const f = folio(c, t.folios[0]!);
  const tree = peek(avR(c, t.anonVmas[0]!, 'anon_vma_interval_tree_foreach'), 'tree');
  for (let i = t.nums[0]!; i < tree.length; i++) {
    const v = vmaR(c, c.s.avcs[tree[i]!]!.vma);
    if (v.pgoff + vmaPages(v) - 1 >= f.index && v.pgoff <= f.index + f.nrPages - 1) return i;
  }
  return -1;
}

/**
 * walker-sees-every-mapping (§2.12): each mapping of t.seen still maps the
 * folio at the walk's end. For an uncontended try_to_unmap (t.seen: the
 * mappings when it began) that is one it should have unmapped; for
 * remove_migration_ptes (t.seen: those it has not found) one it passed by.
 */
function checkMissed(c: Ctx, t: Thread, what: string): void {
  const folioId = t.folios[0]!;
  for (const { mm: m, sub } of t.seen) {
    const mmState = c.s.mms[m];
    if (mmState === undefined) continue;
    for (const p of ptePages(mmState.ptes)) {
      const pte = mmState.ptes[p]!;
      if (pte.folio === folioId && pte.sub === sub)
        warn(c, `${RECORD.walkerMissed} ${threadName(t.id)} (${what} of F${folioId}) finished uncontended but P${m} still maps page ${sub} of it at ${p}`);
    }
  }
}

/** A walk of the locked tree: rmap_one on one VMA, rwc->done after it, and what follows the walk. */
interface Walk {
  one(c: Ctx, t: Thread, vmaId: Id): void;
  done(c: Ctx, t: Thread): boolean;
  finish(c: Ctx, t: Thread): boolean;
}

/** The walk after the anon_vma is locked: one VMA per step, then the walk's end. */
function walkStep(w: Walk): Step {
  return (c, t) => {
    const pos = nextInTree(c, t);
    if (pos >= 0) {
      const tree = peek(avR(c, t.anonVmas[0]!, 'rmap_walk_anon'), 'tree');
      w.one(c, t, c.s.avcs[tree[pos]!]!.vma);
      t.nums[0] = pos + 1;
      if (!w.done(c, t) && nextInTree(c, t) >= 0) return false;
    }
    return w.finish(c, t);
  };
}

/** try_to_unmap: rmap_one try_to_unmap_one, done when folio_not_mapped. */
const UNMAP: Walk = {
  one: (c, t, vmaId) => void c.k.try_to_unmap_one(c, t.folios[0]!, vmaId),
  done: (c, t) => folio(c, t.folios[0]!).mapcount <= 0,
  finish: (c, t) => {
    walkUnlock(c, t);
    checkMissed(c, t, 'try_to_unmap');
    return walkerEnd(c, t);
  },
};

/** folio_referenced: rmap_one folio_referenced_one, done when every mapping was found. */
const REFERENCED: Walk = {
  one: (c, t, vmaId) => void (t.nums[1] = t.nums[1]! - c.k.folio_referenced_one(c, t.folios[0]!, vmaId)),
  done: (_c, t) => t.nums[1]! <= 0,
  finish: (c, t) => {
    walkUnlock(c, t);
    return walkerEnd(c, t);
  },
};

/**
 * remove_migration_ptes (migrate.c): rmap_one remove_migration_pte, no
 * done (the whole tree is walked). Then, as migrate_folio_move ends: the
 * walk's unlock, put_anon_vma of the reference folio_get_anon_vma took (it
 * may free the anon_vma and, through __put_anon_vma, drop the root's
 * reference), folio_unlock.
 */
const MIGRATE: Walk = {
  one: (c, t, vmaId) => {
    const mmId = vmaR(c, vmaId).mm;
    for (const at of c.k.remove_migration_pte(c, t.folios[0]!, vmaId)) {
      const sub = pteR(c, mmId, at)!.sub;
      t.seen = t.seen.filter((p) => p.mm !== mmId || p.sub !== sub);
    }
  },
  done: () => false,
  finish: (c, t) => {
    anon_vma_unlock_read(c, t.anonVmas[0]!);
    checkMissed(c, t, 'remove_migration_ptes');
    c.k.put_anon_vma(c, t.anonVmas[1]!);
    folio_unlock(c, t.folios[0]!);
    return walkerEnd(c, t);
  },
};

/** After folio_lock_anon_vma_read: go on walking, or end. */
function afterAnonLock(c: Ctx, t: Thread, r: number, unmap: boolean): boolean {
  if (r === NIL || r === ANON_LOCK_CONTENDED) {
    // Nothing to walk, or folio_referenced's try_lock gave up (contended: no property check).
    folio_unlock(c, t.folios[0]!);
    return walkerEnd(c, t);
  }
  if (r <= -2) {
    t.anonVmas = [-2 - r];
    t.pc = 'anon_vma_lock_read';
    return false;
  }
  t.anonVmas = [r];
  t.nums = [0, t.nums[1] ?? 0];
  t.pc = unmap ? 'try_to_unmap_one' : 'folio_referenced_one';
  return false;
}

export const WALKER_STEPS: Record<string, Step> = {
  /** shrink_folio_list's folio_trylock, then try_to_unmap's folio_lock_anon_vma_read. */
  [`reclaim:${ISSUED}`]: (c, t) => {
    if (!folio_trylock(c, t.folios[0]!)) return walkerEnd(c, t);
    t.pc = 'folio_lock_anon_vma_read';
    return false;
  },
  /** folio_referenced: folio_trylock (a locked folio counts as referenced), then the try_lock walk. */
  [`referenced:${ISSUED}`]: (c, t) => {
    t.nums = [0, folio(c, t.folios[0]!).mapcount];
    if (t.nums[1]! <= 0 || !folio_trylock(c, t.folios[0]!)) return walkerEnd(c, t);
    return afterAnonLock(c, t, c.k.folio_lock_anon_vma_read(c, t.folios[0]!, true), false);
  },
  folio_lock_anon_vma_read: (c, t) => afterAnonLock(c, t, c.k.folio_lock_anon_vma_read(c, t.folios[0]!, false), true),
  /** The slow path sleeps on the lock, then drops its refcount pin: if that was the last, the anon_vma goes. */
  anon_vma_lock_read: (c, t) => {
    const anon = t.anonVmas[0]!;
    anon_vma_lock_read(c, anon);
    const a = avR(c, anon, 'folio_lock_anon_vma_read(put)');
    if (a.refcount - 1 === 0) {
      anon_vma_unlock_read(c, anon);
      c.k.put_anon_vma(c, anon);
      folio_unlock(c, t.folios[0]!);
      return walkerEnd(c, t);
    }
    c.k.put_anon_vma(c, anon);
    t.nums = [0, 0];
    t.pc = 'try_to_unmap_one';
    return false;
  },
  try_to_unmap_one: walkStep(UNMAP),
  folio_referenced_one: walkStep(REFERENCED),
  /**
   * migrate_folio_unmap (migrate.c), synchronous mode: folio_lock (it
   * sleeps for the lock), then folio_get_anon_vma. Then the walker sleeps
   * holding the folio lock and that reference (try_to_migrate and the copy
   * are not modelled, see migrate.ts); other threads run meanwhile. No
   * anon_vma: the folio is not mapped, nothing is walked (page_was_mapped 0).
   */
  [`migrate:${ISSUED}`]: (c, t) => {
    const f = t.folios[0]!;
    folio_lock(c, f);
    const anon = c.k.folio_get_anon_vma(c, f);
    if (anon === NIL) {
      // migrate_folio_unmap's VM_BUG_ON_FOLIO: a mapped anon folio always yields its anon_vma.
      if (folio(c, f).mapcount > 0) warn(c, 'migrate_folio_unmap: mapped anon folio without anon_vma');
      folio_unlock(c, f);
      return walkerEnd(c, t);
    }
    t.anonVmas = [anon];
    t.pc = 'remove_migration_ptes';
    return false;
  },
  /**
   * migrate_folio_move's remove_migration_ptes: rmap_walk_anon_lock without
   * rwc->anon_lock (folio_lock_anon_vma_read needs folio_mapped, which
   * migration cannot promise): anon_vma_lock_read on folio_anon_vma(folio),
   * which under the folio lock is the anon_vma the walker pinned. Only that
   * reference keeps it alive if everything mapping the folio went away
   * during the sleep. The walk then begins: its snapshot is taken here.
   */
  remove_migration_ptes: (c, t) => {
    const f = t.folios[0]!;
    const anon = folio(c, f).anonVma;
    anon_vma_lock_read(c, anon);
    t.anonVmas = [anon, t.anonVmas[0]!];
    t.nums = [0];
    t.seen = mappingsOf(c.s, f);
    t.pc = 'remove_migration_pte';
    return false;
  },
  remove_migration_pte: walkStep(MIGRATE),
};

/** A walker on the folio mapped at proc's page, with its snapshot; returns its thread id. */
export function issueWalker(c: Ctx, kind: WalkerKind, proc: Id, page: number): Id {
  const s = c.s;
  const pte = s.mms[proc]!.ptes[page]!;
  const id = WALKER_BASE + s.nextId.walker++;
  const t = emptyThread(id, proc);
  t.walker = kind;
  t.pc = `${kind}:${ISSUED}`;
  t.folios = [pte.folio];
  if (kind === 'reclaim') t.seen = mappingsOf(s, pte.folio);
  insert(c, 'threads', threadKey(id), t);
  s.budgets.walkers = (s.budgets.walkers ?? 0) - 1;
  return id;
}
