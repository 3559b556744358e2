// Data derived from one state that several properties need: the tables as
// arrays, the present PTEs. Computed once per state while the engine
// evaluates the properties on it (Model.evaluate, withStateView), instead of
// once per property; outside such a scope every call derives afresh, so a
// property stays a pure function of the state it is given (a test may change
// a state between two checks).
import { NIL, ptePages, type AnonVma, type Avc, type Folio, type Mm, type Pte, type State, type Vma } from '../models/mm/state.ts';

export interface Mapping {
  mm: Mm;
  page: number;
  pte: Pte;
  /** The VMA containing the page, if any. */
  vma: Vma | undefined;
}

/** A mapping of an anon folio (folio exists and folio->mapping is an anon_vma). */
export interface AnonMapping extends Mapping {
  folio: Folio;
}

export interface StateView {
  /** Each table's records in id order. */
  mms: Mm[];
  vmas: Vma[];
  anonVmas: AnonVma[];
  avcs: Avc[];
  folios: Folio[];
  /** Filled on first use. */
  mappings?: Mapping[];
  anonMappings?: AnonMapping[];
}

function derive(s: State): StateView {
  return {
    mms: Object.values(s.mms),
    vmas: Object.values(s.vmas),
    anonVmas: Object.values(s.anonVmas),
    avcs: Object.values(s.avcs),
    folios: Object.values(s.folios),
  };
}

let scope: { s: State; view: StateView | undefined } | undefined;

/** Evaluate f (the properties on s) with one view of s shared by all of them. */
export function withStateView<T>(s: State, f: () => T): T {
  const outer = scope;
  scope = { s, view: undefined };
  try {
    return f();
  } finally {
    scope = outer;
  }
}

export function stateView(s: State): StateView {
  if (scope?.s !== s) return derive(s);
  return (scope.view ??= derive(s));
}

/**
 * The VMA a PTE belongs to: the attached VMA containing it, or, while a
 * munmap is between detaching VMAs and zapping them (lock granularity), the
 * detached VMA of that mm still covering it, which rmap walks still reach
 * through its AVCs (§5).
 */
export function vmaOfPte(s: State, m: Mm, page: number): Vma | undefined {
  for (const id of m.vmas) {
    const v = s.vmas[id];
    if (v !== undefined && v.start <= page && page < v.end) return v;
  }
  for (const d of stateView(s).vmas) if (!d.attached && d.mm === m.id && d.start <= page && page < d.end) return d;
  return undefined;
}

/** Every present PTE that maps a folio (the zero page excluded), in mm then page order. */
export function folioMappings(s: State): Mapping[] {
  const view = stateView(s);
  if (view.mappings !== undefined) return view.mappings;
  const out: Mapping[] = [];
  for (const m of view.mms) {
    for (const page of ptePages(m.ptes)) {
      const pte = m.ptes[page]!;
      if (pte.folio < 0) continue;
      out.push({ mm: m, page, pte, vma: vmaOfPte(s, m, page) });
    }
  }
  return (view.mappings = out);
}

/** The mappings of anon folios (the folio exists and has an anon_vma), in mm then page order. */
export function anonMappings(s: State): AnonMapping[] {
  const view = stateView(s);
  if (view.anonMappings !== undefined) return view.anonMappings;
  const out: AnonMapping[] = [];
  for (const m of folioMappings(s)) {
    const folio = s.folios[m.pte.folio];
    if (folio === undefined || folio.anonVma === NIL) continue;
    out.push({ mm: m.mm, page: m.page, pte: m.pte, vma: m.vma, folio });
  }
  return (view.anonMappings = out);
}
