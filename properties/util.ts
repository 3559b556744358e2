// Shared helpers of the property modules: readable names for the objects a
// violation talks about (P<mm>, V<vma> [start,end), A<anon_vma>, F<folio>)
// and the iteration over present PTEs every folio property needs.
import { NIL, values, type AnonVma, type Folio, type Id, type Mm, type Pte, type State, type Vma } from '../models/mm/state.ts';

export const mmName = (id: Id): string => `P${id}`;
export const avName = (id: Id): string => `A${id}`;
export const folioName = (id: Id): string => `F${id}`;

/** "V3 [0,4) of P0", or "V3" when the VMA does not exist. */
export function vmaName(s: State, id: Id): string {
  const v = s.vmas[id];
  return v === undefined ? `V${id}` : `V${id} [${v.start},${v.end}) of ${mmName(v.mm)}`;
}

/** "AVC5 (V3 -> A1)". */
export function avcName(s: State, id: Id): string {
  const c = s.avcs[id];
  return c === undefined ? `AVC${id}` : `AVC${id} (V${c.vma} -> ${avName(c.anonVma)})`;
}

/** The chain of a VMA as anon_vma names, head first: "[A1, A0]". */
export function chainNames(s: State, v: Vma): string {
  return `[${v.chain.map((c) => avName(s.avcs[c]?.anonVma ?? NIL)).join(', ')}]`;
}

/** The anon_vma ids a VMA's chain links to, in list order (missing AVCs skipped). */
export function chainAnonVmas(s: State, v: Vma): Id[] {
  const out: Id[] = [];
  for (const c of v.chain) {
    const a = s.avcs[c];
    if (a !== undefined) out.push(a.anonVma);
  }
  return out;
}

/** The VMA of mm m that contains page, if any (find_vma on the sorted list). */
export function findVma(s: State, m: Mm, page: number): Vma | undefined {
  for (const id of m.vmas) {
    const v = s.vmas[id];
    if (v !== undefined && v.start <= page && page < v.end) return v;
  }
  return undefined;
}

/**
 * The VMA a PTE belongs to: the attached VMA containing it, or, while a
 * munmap is between detaching VMAs and zapping them (lock granularity), the
 * detached VMA of that mm still covering it, which rmap walks still reach
 * through its AVCs (§5).
 */
export function vmaOfPte(s: State, m: Mm, page: number): Vma | undefined {
  const v = findVma(s, m, page);
  if (v !== undefined) return v;
  for (const key in s.vmas) {
    const d = s.vmas[key]!;
    if (!d.attached && d.mm === m.id && d.start <= page && page < d.end) return d;
  }
  return undefined;
}

export interface Mapping {
  mm: Mm;
  page: number;
  pte: Pte;
  /** The VMA containing the page, if any. */
  vma: Vma | undefined;
}

/** Every present PTE that maps a folio (the zero page excluded), in mm then page order. */
export function folioMappings(s: State): Mapping[] {
  const out: Mapping[] = [];
  for (const m of values(s.mms)) {
    const pages = Object.keys(m.ptes)
      .map(Number)
      .sort((a, b) => a - b);
    for (const page of pages) {
      const pte = m.ptes[page]!;
      if (pte.folio < 0) continue;
      out.push({ mm: m, page, pte, vma: vmaOfPte(s, m, page) });
    }
  }
  return out;
}

/** A mapping of an anon folio (folio exists and folio->mapping is an anon_vma). */
export interface AnonMapping extends Mapping {
  folio: Folio;
}

export function anonMappings(s: State): AnonMapping[] {
  const out: AnonMapping[] = [];
  for (const m of folioMappings(s)) {
    const folio = s.folios[m.pte.folio];
    if (folio === undefined || folio.anonVma === NIL) continue;
    out.push({ ...m, folio });
  }
  return out;
}

/** "P0 page 1 (F2 page 0)". */
export function mappingName(m: Mapping): string {
  return `${mmName(m.mm.id)} page ${m.page} (${folioName(m.pte.folio)} page ${m.pte.sub})`;
}

/** Non-freed anon_vmas in id order. */
export function liveAnonVmas(s: State): AnonVma[] {
  return values(s.anonVmas).filter((a) => !a.freed);
}
