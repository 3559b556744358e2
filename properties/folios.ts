// Folios and their mappings: rmap reachability, mapcount, PageAnonExclusive
// and pgoff linearity (kernel-semantics §1.5, §2.12, §7.3 I7-I9, I11;
// bug-corpus §0.3 I1, I9).
import type { Property } from '../src/engine/model.ts';
import { rmap_walk_anon, vma_address, type RmapVisit } from '../models/mm/rmap.ts';
import { NIL, linearPageIndex, threadOf, type Id, type State } from '../models/mm/state.ts';
import { anonMappings, avName, chainAnonVmas, folioMappings, folioName, mappingName, mmName, vmaName, stateView } from './util.ts';

export const rmapCoverage: Property<State> = {
  id: 'rmap-coverage',
  description: 'every PTE mapping an anon folio is found by rmap_walk_anon from folio->mapping at folio->index, and the roots agree (whenever a walk could run: not while a thread in flight write-locks the root)',
  rule: 'I7, kernel-semantics §7.3, §2.12 (rmap_walk_anon, vma_address; __page_check_anon_rmap); bug-corpus §0.3 I1',
  when: 'always',
  check(s) {
    const out: string[] = [];
    const walks = new Map<Id, RmapVisit[]>();
    for (const m of anonMappings(s)) {
      const f = m.folio;
      if (walkExcluded(s, f.anonVma)) continue;
      const v = m.vma;
      if (v === undefined) {
        out.push(`${mappingName(m)} lies in no VMA of ${mmName(m.mm.id)}: rmap_walk_anon(${folioName(f.id)}) cannot find it`);
        continue;
      }
      let walk = walks.get(f.id);
      if (walk === undefined) {
        walk = rmap_walk_anon(s, f.id);
        walks.set(f.id, walk);
      }
      const want = f.index + m.pte.sub;
      const visits = walk.filter((w) => w.vma === v.id);
      if (visits.length === 0) {
        out.push(`${mappingName(m)} in ${vmaName(s, v.id)} is not visited by rmap_walk_anon(${folioName(f.id)}) over ${avName(f.anonVma)}: ${whyMissed(s, v.id, f.anonVma)}`);
      } else if (vma_address(v, want, 1) !== m.page) {
        out.push(
          `${mappingName(m)} in ${vmaName(s, v.id)}: rmap_walk_anon(${folioName(f.id)}) visits the VMA but looks for pgoff ${want} (index ${f.index} + ${m.pte.sub}) at ${fmtAddr(vma_address(v, want, 1))}, while the PTE's linear index is ${linearPageIndex(v, m.page)}`,
        );
      }
      const fRoot = s.anonVmas[f.anonVma]?.root ?? NIL;
      const vRoot = v.anonVma === NIL ? NIL : (s.anonVmas[v.anonVma]?.root ?? NIL);
      if (v.anonVma === NIL) out.push(`${mappingName(m)} in ${vmaName(s, v.id)}: the VMA has no anon_vma (roots cannot agree)`);
      else if (fRoot !== vRoot)
        out.push(
          `${mappingName(m)} in ${vmaName(s, v.id)}: root of ${folioName(f.id)}'s ${avName(f.anonVma)} is ${avName(fRoot)} but root of the VMA's ${avName(v.anonVma)} is ${avName(vRoot)}`,
        );
    }
    return out;
  },
};

/**
 * No rmap walk of anon_vma avId can run now: a thread in flight holds its
 * root's rwsem for write (at lock granularity, e.g. MREMAP_RELOCATE_ANON
 * between relocating a folio and moving its PTE). rmap_walk_anon takes the
 * root for read, so a mapping missed here is not seen missed by any walker;
 * the state where the writer lets go is checked in turn.
 */
function walkExcluded(s: State, avId: Id): boolean {
  const root = s.anonVmas[avId]?.root;
  const writer = root === undefined ? NIL : (s.anonVmas[root]?.rwsem.writer ?? NIL);
  return writer !== NIL && threadOf(s, writer) !== undefined;
}

function fmtAddr(a: number): string {
  return a < 0 ? 'EFAULT' : `page ${a}`;
}

/** Explain why a walk over anon_vma avId missed VMA vmaId. */
function whyMissed(s: State, vmaId: Id, avId: Id): string {
  const v = s.vmas[vmaId]!;
  if (!chainAnonVmas(s, v).includes(avId)) return `${avName(avId)} is not on the VMA's chain`;
  const a = s.anonVmas[avId];
  const inTree = a !== undefined && a.tree.some((c) => s.avcs[c]?.vma === vmaId);
  if (!inTree) return `the VMA's AVC to ${avName(avId)} is not in ${avName(avId)}'s tree`;
  return `the folio's index range lies outside the VMA's pgoff range [${v.pgoff},${v.pgoff + v.end - v.start - 1}]`;
}

export const mapcountExact: Property<State> = {
  id: 'mapcount-exact',
  description: 'folio mapcount equals the number of PTEs (over all mms) mapping the folio',
  rule: 'I8, kernel-semantics §7.3, §1.5 (folio_mapcount kdoc), §2.13',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    const count = new Map<Id, number>();
    for (const m of folioMappings(s)) {
      if (s.folios[m.pte.folio] === undefined) {
        out.push(`${mappingName(m)}: PTE maps ${folioName(m.pte.folio)}, which does not exist`);
        continue;
      }
      count.set(m.pte.folio, (count.get(m.pte.folio) ?? 0) + 1);
    }
    for (const f of stateView(s).folios) {
      const n = count.get(f.id) ?? 0;
      if (f.mapcount !== n) out.push(`${folioName(f.id)}: mapcount is ${f.mapcount} but ${n} PTE(s) map it`);
    }
    return out;
  },
};

export const exclusiveMeansSingle: Property<State> = {
  id: 'exclusive-means-single',
  description: 'a page with PageAnonExclusive is mapped by at most one PTE (checked while its folio is mapped)',
  rule: 'I9, kernel-semantics §7.3, §1.5, §2.7 (fork clears it: folio_try_dup_anon_rmap_pte), §2.11 (wp_page_reuse BUG)',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    const maps = new Map<string, string[]>();
    for (const m of folioMappings(s)) {
      const key = `${m.pte.folio}:${m.pte.sub}`;
      const list = maps.get(key) ?? [];
      list.push(`${mmName(m.mm.id)} page ${m.page}`);
      maps.set(key, list);
    }
    for (const f of stateView(s).folios) {
      // folio->mapping and the exclusive bits are only meaningful while mapped (§1.5, I8).
      if (f.mapcount <= 0) continue;
      for (let sub = 0; sub < f.nrPages; sub++) {
        if ((f.exclusive & (1 << sub)) === 0) continue;
        // At most one: an unmapped page of a partially mapped large folio keeps
        // the bit (the kernel's THP split comment says so; the digest's I9
        // "exactly one" is stricter than the kernel).
        const list = maps.get(`${f.id}:${sub}`) ?? [];
        if (list.length > 1)
          out.push(`${folioName(f.id)} page ${sub} is PageAnonExclusive but mapped by ${list.length} PTEs${list.length ? ` (${list.join(', ')})` : ''}`);
      }
    }
    return out;
  },
};

export const pgoffLinear: Property<State> = {
  id: 'pgoff-linear',
  description: "every present anon PTE's linear page index equals folio->index + its page in the folio",
  rule: 'I11, kernel-semantics §7.3, §1.5 (linear_page_index, page_pgoff), §7.1 (__page_check_anon_rmap BUG); bug-corpus §0.3 I9',
  when: 'quiescent',
  check(s) {
    const out: string[] = [];
    for (const m of anonMappings(s)) {
      if (m.vma === undefined) continue; // reported by rmap-coverage
      const lin = linearPageIndex(m.vma, m.page);
      const want = m.folio.index + m.pte.sub;
      if (lin !== want)
        out.push(`${mappingName(m)} in ${vmaName(s, m.vma.id)}: linear index ${lin} != ${folioName(m.folio.id)}.index + ${m.pte.sub} = ${want}`);
    }
    return out;
  },
};
