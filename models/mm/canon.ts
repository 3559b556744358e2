// Canonical encoding of a state (DESIGN.md §5): ids of mms, VMAs, AVCs,
// anon_vmas and folios are renamed in a fixed traversal order, so states
// that differ only in allocation order encode alike; processes with the same
// shape are ordered by that shape, so a permutation of interchangeable
// processes encodes alike too. Every modelled field is encoded, so states
// that differ in one encode differently. Ties between processes of equal
// shape fall back to id order: the encoding may then miss a symmetry, which
// costs states but never soundness.
import { NIL, ZERO_PAGE, type Id, type Mm, type State } from './state.ts';

/** A deterministic 32-bit string hash (FNV-1a): stable across threads, unlike an intern table. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** An id-free shape of a process used to order interchangeable processes. */
function shape(s: State, m: Mm): number[] {
  const out: number[] = [m.vmas.length];
  for (const id of m.vmas) {
    const v = s.vmas[id]!;
    out.push(v.start, v.end, v.pgoff, v.flags | (v.hasClose ? 256 : 0), v.anonVma === NIL ? 0 : 1, v.chain.length);
  }
  for (const key in m.ptes) {
    const pte = m.ptes[key]!;
    const f = pte.folio === ZERO_PAGE ? undefined : s.folios[pte.folio];
    out.push(Number(key), pte.writable ? 1 : 0, pte.sub, f === undefined ? -1 : f.mapcount, f === undefined ? -1 : f.index);
  }
  out.push(m.hasPinned ? 1 : 0);
  return out;
}

function compareArrays(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The canonical order of processes: by shape, then by id. */
export function canonicalMmOrder(s: State): Id[] {
  const mms = Object.values(s.mms);
  if (mms.length <= 1) return mms.map((m) => m.id);
  const shapes = new Map<Id, number[]>();
  for (const m of mms) shapes.set(m.id, shape(s, m));
  return mms.map((m) => m.id).sort((a, b) => compareArrays(shapes.get(a)!, shapes.get(b)!) || a - b);
}

/** The canonical encoding of s as a flat Int32Array. */
export function encodeState(s: State): Int32Array {
  const mmOrder = canonicalMmOrder(s);
  const mmIdx = new Map<Id, number>();
  mmOrder.forEach((id, i) => mmIdx.set(id, i));
  const vmaIdx = new Map<Id, number>();
  const avcIdx = new Map<Id, number>();
  const avIdx = new Map<Id, number>();
  const avOrder: Id[] = [];
  const folioIdx = new Map<Id, number>();
  const folioOrder: Id[] = [];
  const nameAv = (id: Id): void => {
    if (id !== NIL && !avIdx.has(id) && s.anonVmas[id] !== undefined) {
      avIdx.set(id, avOrder.length);
      avOrder.push(id);
    }
  };
  const nameFolio = (id: Id): void => {
    if (id >= 0 && !folioIdx.has(id)) {
      folioIdx.set(id, folioOrder.length);
      folioOrder.push(id);
    }
  };
  // Traversal: processes in canonical order, their VMAs by address, each
  // VMA's chain in list order, then PTEs by page.
  for (const mmId of mmOrder) {
    const m = s.mms[mmId]!;
    for (const vId of m.vmas) {
      vmaIdx.set(vId, vmaIdx.size);
      const v = s.vmas[vId]!;
      nameAv(v.anonVma);
      for (const cId of v.chain) {
        avcIdx.set(cId, avcIdx.size);
        nameAv(s.avcs[cId]!.anonVma);
      }
    }
    for (const key in m.ptes) nameFolio(m.ptes[key]!.folio);
  }
  // Detached VMAs (none between syscalls in a correct model) and their AVCs.
  for (const key in s.vmas) {
    const v = s.vmas[key]!;
    if (!vmaIdx.has(v.id)) {
      vmaIdx.set(v.id, vmaIdx.size);
      for (const cId of v.chain) avcIdx.set(cId, avcIdx.size);
    }
  }
  for (const key in s.avcs) if (!avcIdx.has(Number(key))) avcIdx.set(Number(key), avcIdx.size);
  // anon_vmas reached through parent/root links, then any left (leaked ones),
  // then folios not mapped anywhere. Freed anon_vmas that nothing refers to
  // are dropped: nothing can observe them.
  for (let i = 0; i < avOrder.length; i++) {
    const a = s.anonVmas[avOrder[i]!]!;
    nameAv(a.parent);
    nameAv(a.root);
  }
  for (const key in s.folios) {
    const f = s.folios[key]!;
    if (f.mapcount > 0 || folioIdx.has(f.id)) nameAv(f.anonVma);
  }
  for (const key in s.anonVmas) if (!s.anonVmas[key]!.freed) nameAv(Number(key));
  for (let i = 0; i < avOrder.length; i++) {
    const a = s.anonVmas[avOrder[i]!]!;
    nameAv(a.parent);
    nameAv(a.root);
  }
  for (const key in s.folios) nameFolio(Number(key));

  const out: number[] = [];
  const ref = (map: Map<Id, number>, id: Id): number => (id < 0 ? id : (map.get(id) ?? -3));
  const thread = (id: Id): number => (id < 0 ? id : (mmIdx.get(id) ?? 1000 + id));

  out.push(s.budgets.enomem, s.warnings.length);
  for (const w of s.warnings) out.push(hashString(w));
  out.push(s.uaf.length);
  for (const u of s.uaf) out.push(hashString(u));

  out.push(mmOrder.length);
  for (const mmId of mmOrder) {
    const m = s.mms[mmId]!;
    out.push(m.mmapLock.writer === NIL ? -1 : thread(m.mmapLock.writer), m.mmapLock.readers, thread(m.pageTableLock), thread(m.ptl), m.hasPinned ? 1 : 0);
    out.push(m.vmas.length);
    for (const vId of m.vmas) {
      const v = s.vmas[vId]!;
      out.push(v.start, v.end, v.pgoff, v.flags, v.hasClose ? 1 : 0, v.attached ? 1 : 0, ref(avIdx, v.anonVma), v.chain.length);
      for (const cId of v.chain) {
        const a = s.avcs[cId]!;
        out.push(ref(avIdx, a.anonVma), a.inTree ? 1 : 0, a.cachedStart, a.cachedLast);
      }
    }
    let n = 0;
    for (const _ in m.ptes) n++;
    out.push(n);
    for (const key in m.ptes) {
      const pte = m.ptes[key]!;
      out.push(Number(key), ref(folioIdx, pte.folio), pte.sub, pte.writable ? 1 : 0);
    }
  }
  // Detached VMAs, by canonical index.
  const detached = Object.values(s.vmas).filter((v) => !v.attached);
  out.push(detached.length);
  for (const v of detached) {
    out.push(ref(vmaIdx, v.id), ref(mmIdx, v.mm), v.start, v.end, v.pgoff, v.flags, ref(avIdx, v.anonVma), v.chain.length);
    for (const cId of v.chain) out.push(ref(avIdx, s.avcs[cId]!.anonVma), s.avcs[cId]!.inTree ? 1 : 0);
  }
  out.push(avOrder.length);
  for (const id of avOrder) {
    const a = s.anonVmas[id]!;
    out.push(ref(avIdx, a.root), ref(avIdx, a.parent), a.refcount, a.numChildren, a.numActiveVmas, a.freed ? 1 : 0);
    out.push(a.rwsem.writer === NIL ? -1 : thread(a.rwsem.writer), a.rwsem.readers, a.tree.length);
    for (const cId of a.tree) out.push(ref(avcIdx, cId));
    if (a.ext !== undefined) {
      const keys = Object.keys(a.ext).sort();
      out.push(keys.length);
      for (const k of keys) out.push(hashString(k), a.ext[k]!);
    } else out.push(0);
  }
  out.push(folioOrder.length);
  for (const id of folioOrder) {
    const f = s.folios[id]!;
    out.push(ref(avIdx, f.anonVma), f.index, f.nrPages, f.mapcount, f.exclusive, f.pinned ? 1 : 0, thread(f.locked));
  }
  return Int32Array.from(out);
}
