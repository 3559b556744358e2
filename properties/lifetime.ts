// anon_vma lifetime: nothing refers to a freed anon_vma, and nothing is left
// when every process has exited (kernel-semantics §1.3, §2.1, §2.6, §7.3 I6;
// bug-corpus §0.3 I2, B2, B8e).
import type { Property } from '../src/engine/model.ts';
import { NIL, type Id, type State } from '../models/mm/state.ts';
import { avName, avcName, folioName, liveAnonVmas, vmaName, stateView } from './util.ts';

/** Why a reference to anon_vma id is bad: freed, or no such anon_vma; undefined when it is fine. */
function badRef(s: State, id: Id): string | undefined {
  if (id === NIL) return undefined;
  const a = s.anonVmas[id];
  if (a === undefined) return `${avName(id)}, which does not exist`;
  if (a.freed) return `freed ${avName(id)}`;
  return undefined;
}

export const noUseAfterFree: Property<State> = {
  id: 'no-use-after-free',
  description: 'no kernel path touched a freed anon_vma, and no VMA, AVC, mapped folio, parent or root pointer refers to one',
  rule: 'kernel-semantics §1.3 (__put_anon_vma, SLAB_TYPESAFE_BY_RCU), §2.12 (stale folio->mapping), §7.1 (__folio_rmap_sanity_checks); bug-corpus §0.3 I2',
  when: 'always',
  check(s) {
    const out: string[] = [...s.uaf];
    for (const v of stateView(s).vmas) {
      const bad = badRef(s, v.anonVma);
      if (bad) out.push(`${vmaName(s, v.id)}: vma->anon_vma is ${bad}`);
    }
    for (const c of stateView(s).avcs) {
      const bad = badRef(s, c.anonVma);
      if (bad) out.push(`${avcName(s, c.id)}: avc->anon_vma is ${bad}`);
    }
    for (const f of stateView(s).folios) {
      if (f.mapcount <= 0) continue; // folio->mapping is only reliable while mapped (§1.5)
      const bad = badRef(s, f.anonVma);
      if (bad) out.push(`${folioName(f.id)} (mapcount ${f.mapcount}): folio->mapping is ${bad}`);
    }
    for (const a of liveAnonVmas(s)) {
      const p = badRef(s, a.parent);
      if (p) out.push(`${avName(a.id)}: ->parent is ${p}`);
      const r = badRef(s, a.root);
      if (r) out.push(`${avName(a.id)}: ->root is ${r}`);
    }
    return out;
  },
};

export const noLeak: Property<State> = {
  id: 'no-leak',
  description: 'when every process has exited, no anon_vma, AVC, VMA or folio remains',
  rule: 'kernel-semantics §5 (exit_mmap), §2.6 (unlink_anon_vmas), §1.3 (put_anon_vma frees at refcount 0)',
  when: 'end',
  check(s) {
    if (Object.keys(s.mms).length > 0) return [];
    const out: string[] = [];
    for (const a of liveAnonVmas(s)) out.push(`${avName(a.id)} is not freed (refcount ${a.refcount})`);
    for (const c of stateView(s).avcs) out.push(`${avcName(s, c.id)} remains`);
    for (const v of stateView(s).vmas) out.push(`${vmaName(s, v.id)} remains`);
    for (const f of stateView(s).folios) out.push(`${folioName(f.id)} remains (mapcount ${f.mapcount})`);
    return out;
  },
};
