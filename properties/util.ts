// Shared helpers of the property modules: readable names for the objects a
// violation talks about (P<mm>, V<vma> [start,end), A<anon_vma>, F<folio>)
// (the iteration over present PTEs every folio property needs is in view.ts).
import { NIL, type AnonVma, type Id, type Mm, type State, type Vma } from '../models/mm/state.ts';
import { stateView, type Mapping } from './view.ts';

export { anonMappings, folioMappings, stateView, vmaOfPte, type AnonMapping, type Mapping } from './view.ts';

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

/** "P0 page 1 (F2 page 0)". */
export function mappingName(m: Mapping): string {
  return `${mmName(m.mm.id)} page ${m.page} (${folioName(m.pte.folio)} page ${m.pte.sub})`;
}

/** Non-freed anon_vmas in id order. */
export function liveAnonVmas(s: State): AnonVma[] {
  return stateView(s).anonVmas.filter((a) => !a.freed);
}
