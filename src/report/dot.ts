// Graphviz DOT pictures of one state and of a trace (one picture per step):
// each process's address space as a ruler (page numbers, its VMAs, its PTEs),
// the anon_vma hierarchy (parent and root edges, counters, freed tombstones),
// AVC edges from VMAs to anon_vmas labelled with the chain position, folios
// with mapping/index/mapcount and the PTE edges that map them. What changed
// since the previous state is drawn blue; the objects a violation names are
// drawn red. Display names come from json.ts's displayNames; objects are
// matched between states by the model's ids (as in text.ts's renderDiff).
//
// Violation details name objects by the model's ids (properties/util.ts:
// P<mm>, V<vma>, A<anon_vma>, F<folio>, AVC<avc>), and display names are
// those same ids, so a violated object is matched by its name directly.

import { contentName } from '../../properties/user.ts';
import { NIL, USER_ZERO, ZERO_PAGE, ptePages, threadOf, values, type AnonVma, type Avc, type Folio, type Id, type Mm, type State, type Vma } from '../../models/mm/state.ts';
import { displayNames, mmAlive, protString, threadToJson, vmaMarks, type Names } from './json.ts';

export interface PictureViolation {
  property: string;
  detail: string;
}

export interface StepDotOptions {
  title: string;
  violations?: readonly PictureViolation[];
  /** Pages in each address space (the model's bound); the ruler shows at least these. */
  pages?: number;
}

export interface TraceStep {
  /** The operation that led to this state ("initial state" or anything for step 0). */
  text: string;
  state: State;
}

// ------------------------------------------------------------------ colours

const CHANGED = '#1f6fd1';
const CHANGED_FILL = '#dcebff';
const VIOLATED = '#d11f1f';
const VIOLATED_FILL = '#ffd9d9';
const FREED = '#8c8c8c';
const GAP_FILL = '#f2f2f2';

// ------------------------------------------------------------------ escaping

/** A DOT double-quoted string. */
const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/** Text inside an HTML-like label. */
const h = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** An HTML-like label, written as <...> rather than quoted. */
class HtmlLabel {
  constructor(readonly html: string) {}
}
const html = (s: string): HtmlLabel => new HtmlLabel(s);

const attrs = (a: Record<string, string | number | HtmlLabel | undefined>): string => {
  const parts = Object.entries(a)
    .filter((e): e is [string, string | number | HtmlLabel] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v instanceof HtmlLabel ? `<${v.html}>` : typeof v === 'number' ? v : q(v)}`);
  return parts.length > 0 ? ` [${parts.join(', ')}]` : '';
};

// ------------------------------------------------------------------ node ids (model ids: stable along a trace)

const mmNode = (id: Id): string => `mm_${id}`;
const avNode = (id: Id): string => `av_${id}`;
const folioNode = (id: Id): string => (id === ZERO_PAGE ? 'zero_page' : `folio_${id}`);
const vmaPort = (id: Id): string => `v${id}`;
const ptePort = (page: number): string => `p${page}`;

// ------------------------------------------------------------------ violated objects

export interface Violated {
  mms: Set<Id>;
  vmas: Set<Id>;
  anonVmas: Set<Id>;
  folios: Set<Id>;
  avcs: Set<Id>;
  /** Pages a user-view violation names ("P<id> page <n>: expected .., reads .."), as "mm:page". */
  pages: Map<string, string>;
}

/** The objects the violation details name (P<id>, V<id>, A<id>, F<id>, AVC<id>, by model id). */
export function violatedObjects(violations: readonly PictureViolation[]): Violated {
  const out: Violated = { mms: new Set(), vmas: new Set(), anonVmas: new Set(), folios: new Set(), avcs: new Set(), pages: new Map() };
  for (const v of violations) {
    const page = v.detail.match(/^P(\d+) page (\d+): expected (.+), reads (.+)$/);
    if (page) out.pages.set(`${page[1]}:${page[2]}`, `expected ${page[3]}, reads ${page[4]}`);
    for (const m of v.detail.matchAll(/\b(AVC|[PVAF])(\d+)\b/g)) {
      const id = Number(m[2]);
      const table = { AVC: out.avcs, P: out.mms, V: out.vmas, A: out.anonVmas, F: out.folios }[m[1] as 'AVC' | 'P' | 'V' | 'A' | 'F'];
      table.add(id);
    }
  }
  return out;
}

// ------------------------------------------------------------------ change detection (by model id)

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function vmaChanged(before: State | null, v: Vma): boolean {
  if (before === null) return false;
  const b = before.vmas[v.id];
  if (!b) return true;
  const chainOf = (s: State, x: Vma): Id[] => x.chain.map((c) => s.avcs[c]?.anonVma ?? NIL);
  return (
    b.mm !== v.mm ||
    b.start !== v.start ||
    b.end !== v.end ||
    b.pgoff !== v.pgoff ||
    b.flags !== v.flags ||
    b.hasClose !== v.hasClose ||
    b.anonVma !== v.anonVma ||
    b.attached !== v.attached ||
    !same(b.chain, v.chain) ||
    !same(chainOf(before, b), chainOf(before, v))
  );
}

function anonVmaChanged(before: State | null, a: AnonVma): boolean {
  if (before === null) return false;
  const b = before.anonVmas[a.id];
  if (!b) return true;
  return (
    b.root !== a.root ||
    b.parent !== a.parent ||
    b.refcount !== a.refcount ||
    b.numChildren !== a.numChildren ||
    b.numActiveVmas !== a.numActiveVmas ||
    b.freed !== a.freed ||
    !same(b.tree, a.tree) ||
    !same(b.ext ?? {}, a.ext ?? {})
  );
}

function folioChanged(before: State | null, f: Folio): boolean {
  if (before === null) return false;
  const b = before.folios[f.id];
  if (!b) return true;
  return (
    b.anonVma !== f.anonVma ||
    b.index !== f.index ||
    b.nrPages !== f.nrPages ||
    b.mapcount !== f.mapcount ||
    b.exclusive !== f.exclusive ||
    b.pinned !== f.pinned ||
    b.locked !== f.locked
  );
}

/** Everything that changed from `before` to `after`, as a Violated set (to mark in red when a violation names nothing). */
export function changedObjects(before: State, after: State): Violated {
  const out: Violated = { mms: new Set(), vmas: new Set(), anonVmas: new Set(), folios: new Set(), avcs: new Set(), pages: new Map() };
  for (const v of values(after.vmas)) if (vmaChanged(before, v)) out.vmas.add(v.id);
  for (const a of values(after.anonVmas)) if (anonVmaChanged(before, a)) out.anonVmas.add(a.id);
  for (const f of values(after.folios)) if (folioChanged(before, f)) out.folios.add(f.id);
  for (const a of values(after.avcs)) if (!before.avcs[a.id]) out.avcs.add(a.id);
  for (const m of values(after.mms)) {
    if (!before.mms[m.id]) out.mms.add(m.id);
    // A changed PTE is red when its process and its folio both are (mmLabel).
    for (const page of ptePages(m.ptes)) {
      const pte = m.ptes[page]!;
      if (!same(before.mms[m.id]?.ptes[page], pte)) {
        out.mms.add(m.id);
        if (pte.folio >= 0) out.folios.add(pte.folio);
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ labels

/** A display name, with the model id a violation detail uses when the two differ. */
const rawTip = (display: string, raw: string): string => (display === raw ? display : `${display} (model id ${raw})`);

function vmaText(v: Vma): string[] {
  const prot = protString(v.flags) || '---';
  return [`[${v.start},${v.end})`, `pgoff ${v.pgoff} ${prot}`, ...(vmaMarks(v).length > 0 ? [vmaMarks(v).join(' ')] : [])];
}

function anonVmaLabel(n: Names, a: AnonVma, s: State): string {
  const head = `${n.anonVma(a.id)}${a.root === a.id ? ' (root)' : ''}${a.freed ? ' FREED' : ''}`;
  const ext = a.ext ? Object.entries(a.ext).map(([k, v]) => ` ${k} ${v}`) : [];
  const counters = `ref ${a.refcount} ch ${a.numChildren} act ${a.numActiveVmas}${ext.join('')}`;
  const tree = a.tree.map((c) => {
    const avc = s.avcs[c];
    return avc ? n.vma(avc.vma) : `avc?${c}`;
  });
  return [head, counters, `tree [${tree.join(', ')}]`].join('\n');
}

function folioLabel(n: Names, f: Folio): string {
  const lines = [n.folio(f.id), `mapping ${f.anonVma === NIL ? 'none' : n.anonVma(f.anonVma)} index ${f.index}`, `mapcount ${f.mapcount}`];
  const marks: string[] = [];
  if (f.nrPages > 1) marks.push(`pages ${f.nrPages}`);
  if (f.exclusive !== 0) marks.push(f.nrPages > 1 ? `excl 0x${f.exclusive.toString(16)}` : 'exclusive');
  if (f.pinned) marks.push('pinned');
  if (f.locked !== NIL) marks.push('locked');
  if (marks.length > 0) lines[2] += ` ${marks.join(' ')}`;
  return lines.join('\n');
}

/** Pages shown on every ruler: 0 .. the highest VMA end or PTE page over all processes (at least 1). */
function rulerPages(s: State, atLeast: number): number {
  let n = Math.max(1, atLeast);
  for (const m of values(s.mms)) {
    for (const id of m.vmas) {
      const v = s.vmas[id];
      if (v) n = Math.max(n, v.end, v.start + 1);
    }
    for (const p of ptePages(m.ptes)) n = Math.max(n, p + 1);
  }
  return n;
}

/** VMAs in rows so that no two in a row overlap (one row unless the state is broken). */
function vmaRows(vmas: Vma[]): Vma[][] {
  const rows: Vma[][] = [];
  const sorted = [...vmas].sort((a, b) => a.start - b.start || a.end - b.end || a.id - b.id);
  for (const v of sorted) {
    const row = rows.find((r) => r[r.length - 1]!.end <= v.start);
    if (row) row.push(v);
    else rows.push([v]);
  }
  return rows.length > 0 ? rows : [[]];
}

interface Ctx {
  s: State;
  before: State | null;
  n: Names;
  bad: Violated;
}

/** The HTML-like label of one process: page ruler, VMA row(s), PTE row. */
function mmLabel(c: Ctx, m: Mm, pages: number): HtmlLabel {
  const { s, before, n, bad } = c;
  const vmas = m.vmas.map((id) => s.vmas[id]).filter((v): v is Vma => v !== undefined);
  const rows: string[] = [];
  const cell = (text: string, extra: string): string => `<TD${extra}>${text}</TD>`;

  rows.push(`<TR>${cell('<B>page</B>', ' ALIGN="LEFT"')}${Array.from({ length: pages }, (_, p) => cell(`<FONT POINT-SIZE="9">${p}</FONT>`, ' WIDTH="58"')).join('')}</TR>`);

  vmaRows(vmas).forEach((row, i) => {
    const cells: string[] = [cell(i === 0 ? '<B>vmas</B>' : '', ' ALIGN="LEFT"')];
    let at = 0;
    for (const v of row) {
      const start = Math.max(v.start, at);
      const end = Math.min(Math.max(v.end, start + 1), pages);
      if (start > at) cells.push(cell('', ` COLSPAN="${start - at}" BGCOLOR="${GAP_FILL}"`));
      const isBad = bad.vmas.has(v.id);
      const isNew = vmaChanged(before, v);
      const color = isBad ? VIOLATED : isNew ? CHANGED : 'black';
      const fill = isBad ? VIOLATED_FILL : isNew ? CHANGED_FILL : '#fff8e1';
      const text = vmaText(v).map(h).join('<BR/>');
      const tip = `${n.vma(v.id)} (model id V${v.id})`;
      cells.push(
        cell(
          isBad || isNew ? `<B>${text}</B>` : text,
          ` PORT="${vmaPort(v.id)}" COLSPAN="${end - start}" BGCOLOR="${fill}" COLOR="${color}" BORDER="${isBad || isNew ? 3 : 1}" TOOLTIP="${h(tip)}"`,
        ),
      );
      at = end;
    }
    if (at < pages) cells.push(cell('', ` COLSPAN="${pages - at}" BGCOLOR="${GAP_FILL}"`));
    rows.push(`<TR>${cells.join('')}</TR>`);
  });

  const ptes: string[] = [cell('<B>ptes</B>', ' ALIGN="LEFT"')];
  for (let p = 0; p < pages; p++) {
    const pte = m.ptes[p];
    // A page user-view names: red, with what the process should read and what it reads.
    const userBad = bad.pages.get(`${m.id}:${p}`);
    if (!pte) {
      ptes.push(cell(userBad ? `<FONT POINT-SIZE="8">${h(userBad)}</FONT>` : '', ` PORT="${ptePort(p)}"${userBad ? ` BGCOLOR="${VIOLATED_FILL}"` : ''}`));
      continue;
    }
    const old = before?.mms[m.id]?.ptes[p];
    const isNew = before !== null && !same(old, pte);
    const isBad = userBad !== undefined || (pte.folio >= 0 && bad.folios.has(pte.folio) && bad.mms.has(m.id));
    // The page's content when something was written there (v<N>).
    const data = pte.folio >= 0 ? s.folios[pte.folio]?.data[pte.sub] : undefined;
    const text =
      `${h(n.pteTarget(pte.folio))}${pte.sub !== 0 ? `+${pte.sub}` : ''}${pte.writable ? ' w' : ''}${data !== undefined && data !== USER_ZERO ? ` ${contentName(data)}` : ''}` +
      (userBad ? `<BR/><FONT POINT-SIZE="8">${h(userBad)}</FONT>` : '');
    ptes.push(
      cell(
        isNew || isBad ? `<B>${text}</B>` : text,
        ` PORT="${ptePort(p)}"${isBad ? ` BGCOLOR="${VIOLATED_FILL}"` : isNew ? ` BGCOLOR="${CHANGED_FILL}"` : ''}`,
      ),
    );
  }
  rows.push(`<TR>${ptes.join('')}</TR>`);
  return html(`<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">${rows.join('')}</TABLE>`);
}

// ------------------------------------------------------------------ the picture of one state

/**
 * Graphviz DOT of state `after`, with what changed since `before` drawn blue
 * (nothing is highlighted when `before` is null) and the objects the
 * violations name drawn red. Deterministic: same input, same text.
 */
export function stepDot(before: State | null, after: State, opts: StepDotOptions): string {
  const s = after;
  const n = displayNames(s);
  const violations = opts.violations ?? [];
  let bad = violatedObjects(violations);
  // A violation that names no object (a kernel assert: a function, not an
  // object) would leave nothing red: mark what this step changed instead,
  // and say so in the caption (issue 14).
  const namesNothing = violations.length > 0 && Object.values(bad).every((set: Set<Id>) => set.size === 0);
  if (namesNothing && before !== null) bad = changedObjects(before, s);
  const c: Ctx = { s, before, n, bad };
  const out: string[] = [];
  const pages = rulerPages(s, opts.pages ?? 0);

  // Title, violations, warnings and removed objects in the graph label.
  const caption: string[] = [opts.title];
  for (const v of violations) caption.push(`VIOLATED ${v.property}: ${v.detail}`);
  if (namesNothing) caption.push(`VIOLATED ${before !== null ? '(the violation names no object: red is what this step changed)' : '(the violation names no object)'}`);
  if (s.warnings.length > 0) caption.push(`warnings: ${s.warnings.join(', ')}`);
  if (before !== null) {
    const nb = displayNames(before);
    const removed: string[] = [];
    for (const m of values(before.mms)) if (!s.mms[m.id]) removed.push(nb.mm(m.id));
    // A VMA replaced by another over the same range of the same process (a
    // merge or move that frees one vm_area_struct and keeps or makes another
    // there) is, to the reader, the same VMA changed: it is drawn changed,
    // not listed as removed beside itself (issue 14).
    const present = new Set(values(s.mms).flatMap((m) => m.vmas.map((id) => n.vma(id))));
    for (const m of values(before.mms))
      for (const id of m.vmas)
        if (!s.mms[m.id]?.vmas.includes(id) && before.vmas[id] && !present.has(nb.vma(id))) removed.push(`vma ${nb.vma(id)}`);
    for (const f of values(before.folios)) if (!s.folios[f.id]) removed.push(`folio ${nb.folio(f.id)}`);
    for (const a of values(before.anonVmas)) if (!s.anonVmas[a.id]) removed.push(`anon_vma ${nb.anonVma(a.id)}`);
    if (removed.length > 0) caption.push(`removed: ${removed.join(', ')}`);
  }
  const captionHtml = caption
    .map((line, i) => {
      const text = h(line);
      if (i === 0) return `<B>${text}</B>`;
      if (line.startsWith('VIOLATED')) return `<FONT COLOR="${VIOLATED}">${text}</FONT>`;
      if (line.startsWith('removed')) return `<FONT COLOR="${CHANGED}">${text}</FONT>`;
      return text;
    })
    .join('<BR ALIGN="LEFT"/>');

  out.push('digraph mmstate {');
  out.push(`  graph${attrs({ rankdir: 'TB', fontname: 'Helvetica', fontsize: 12, labelloc: 't', labeljust: 'l', newrank: 'true', nodesep: 0.3, ranksep: 0.5, label: html(`${captionHtml}<BR ALIGN="LEFT"/>`) })};`);
  out.push(`  node${attrs({ fontname: 'Helvetica', fontsize: 10 })};`);
  out.push(`  edge${attrs({ fontname: 'Helvetica', fontsize: 9 })};`);

  // Processes: one cluster each, with its ruler.
  const mms = values(s.mms).sort((a, b) => a.id - b.id);
  for (const m of mms) {
    const isNew = before !== null && !before.mms[m.id];
    const isBad = bad.mms.has(m.id);
    const parent = m.parent === NIL ? '' : ` (forked from ${n.mm(m.parent)})`;
    out.push(`  subgraph cluster_mm_${m.id} {`);
    out.push(
      `    graph${attrs({
        label: `${n.mm(m.id)}${mmAlive(m) ? '' : ' exited'}${parent}`,
        color: isBad ? VIOLATED : isNew ? CHANGED : 'black',
        penwidth: isBad || isNew ? 2.5 : 1,
        style: 'rounded',
      })};`,
    );
    out.push(`    ${mmNode(m.id)}${attrs({ shape: 'plaintext', label: mmLabel(c, m, pages), tooltip: rawTip(n.mm(m.id), `P${m.id}`) })};`);
    out.push('  }');
  }
  if (mms.length > 0) out.push(`  { rank=same; ${mms.map((m) => mmNode(m.id)).join('; ')}; }`);

  // anon_vmas.
  const avs = values(s.anonVmas).sort((a, b) => a.id - b.id);
  if (avs.length > 0) {
    out.push('  subgraph cluster_anon_vmas {');
    out.push(`    graph${attrs({ label: 'anon_vmas', style: 'rounded,dashed', color: '#888888' })};`);
    for (const a of avs) {
      const isBad = bad.anonVmas.has(a.id);
      const isNew = anonVmaChanged(before, a);
      out.push(
        `    ${avNode(a.id)}${attrs({
          shape: 'box',
          style: a.freed ? (isBad || isNew ? 'dashed,bold,filled' : 'dashed,filled') : isBad || isNew ? 'rounded,bold,filled' : 'rounded,filled',
          fillcolor: isBad ? VIOLATED_FILL : isNew ? CHANGED_FILL : a.freed ? '#eeeeee' : '#e8f5e9',
          color: isBad ? VIOLATED : isNew ? CHANGED : a.freed ? FREED : 'black',
          fontcolor: a.freed ? '#555555' : 'black',
          penwidth: isBad || isNew ? 2.5 : 1,
          label: anonVmaLabel(n, a, s),
          tooltip: rawTip(n.anonVma(a.id), `A${a.id}`),
        })};`,
      );
    }
    out.push('  }');
    // Parent edges drawn parent -> child (dir=back: the arrow points at the parent) so parents rank above children.
    for (const a of avs) {
      const was = before?.anonVmas[a.id];
      const edgeNew = (field: 'parent' | 'root'): boolean => before !== null && (!was || was[field] !== a[field]);
      if (a.parent !== NIL && a.parent !== a.id) {
        const e = edgeNew('parent');
        out.push(
          `  ${avNode(a.parent)} -> ${avNode(a.id)}${attrs({ dir: 'back', label: 'parent', color: e ? CHANGED : 'black', fontcolor: e ? CHANGED : 'black', penwidth: e ? 2.5 : 1 })};`,
        );
      }
      if (a.root !== NIL && a.root !== a.id && a.root !== a.parent) {
        const e = edgeNew('root');
        out.push(
          `  ${avNode(a.id)} -> ${avNode(a.root)}${attrs({ style: 'dotted', label: 'root', constraint: 'false', color: e ? CHANGED : '#555555', fontcolor: e ? CHANGED : '#555555', penwidth: e ? 2.5 : 1 })};`,
        );
      }
    }
    // Missing anon_vmas that something points at.
  }
  const ghostAvs = new Set<Id>();
  const avRef = (id: Id): string => {
    if (!s.anonVmas[id] && !ghostAvs.has(id)) {
      ghostAvs.add(id);
      out.push(`  ${avNode(id)}${attrs({ shape: 'box', style: 'dashed', color: VIOLATED, fontcolor: VIOLATED, label: `${n.anonVma(id)}\n(missing)` })};`);
    }
    return avNode(id);
  };

  // AVC edges: VMA cell -> anon_vma, labelled with the chain position; "*" marks vma->anon_vma.
  for (const m of mms) {
    for (const vid of m.vmas) {
      const v = s.vmas[vid];
      if (!v) continue;
      const chained = new Set<Id>();
      v.chain.forEach((avcId, i) => {
        const avc: Avc | undefined = s.avcs[avcId];
        if (!avc) return;
        chained.add(avc.anonVma);
        const old = before?.avcs[avcId];
        const oldPos = before?.vmas[vid]?.chain.indexOf(avcId) ?? -1;
        const isNew = before !== null && (!old || old.vma !== avc.vma || old.anonVma !== avc.anonVma || old.inTree !== avc.inTree || oldPos !== i);
        const isBad = bad.avcs.has(avcId);
        const color = isBad ? VIOLATED : isNew ? CHANGED : '#2e7d32';
        out.push(
          `  ${mmNode(m.id)}:${vmaPort(vid)}:s -> ${avRef(avc.anonVma)}${attrs({
            label: `${i}${avc.anonVma === v.anonVma ? '*' : ''}${avc.inTree ? '' : ' not in tree'}`,
            style: avc.inTree ? 'solid' : 'dashed',
            color,
            fontcolor: color,
            penwidth: isBad || isNew ? 2.5 : 1.2,
            tooltip: `AVC${avcId}: ${n.vma(vid)} -> ${n.anonVma(avc.anonVma)} (chain position ${i})`,
          })};`,
        );
      });
      if (v.anonVma !== NIL && !chained.has(v.anonVma)) {
        out.push(
          `  ${mmNode(m.id)}:${vmaPort(vid)}:s -> ${avRef(v.anonVma)}${attrs({ label: 'anon_vma (not on chain)', style: 'dashed', color: VIOLATED, fontcolor: VIOLATED })};`,
        );
      }
    }
  }

  // Folios, with their mapping edge (anon_vma -> folio, drawn back so the arrow points at the anon_vma).
  const folios = values(s.folios).sort((a, b) => a.id - b.id);
  const usesZero = mms.some((m) => m.ptes.some((p) => p?.folio === ZERO_PAGE));
  if (folios.length > 0 || usesZero) {
    out.push('  subgraph cluster_folios {');
    out.push(`    graph${attrs({ label: 'folios', style: 'rounded,dashed', color: '#888888' })};`);
    for (const f of folios) {
      const isBad = bad.folios.has(f.id);
      const isNew = folioChanged(before, f);
      out.push(
        `    ${folioNode(f.id)}${attrs({
          shape: 'note',
          style: isBad || isNew ? 'bold,filled' : 'filled',
          fillcolor: isBad ? VIOLATED_FILL : isNew ? CHANGED_FILL : '#f3e5f5',
          color: isBad ? VIOLATED : isNew ? CHANGED : 'black',
          penwidth: isBad || isNew ? 2.5 : 1,
          label: folioLabel(n, f),
          tooltip: rawTip(n.folio(f.id), `F${f.id}`),
        })};`,
      );
    }
    if (usesZero) out.push(`    ${folioNode(ZERO_PAGE)}${attrs({ shape: 'note', style: 'filled', fillcolor: '#eeeeee', label: 'zero page' })};`);
    out.push('  }');
    for (const f of folios) {
      if (f.anonVma === NIL) continue;
      const isNew = before !== null && before.folios[f.id]?.anonVma !== f.anonVma;
      const color = isNew ? CHANGED : '#7b1fa2';
      out.push(
        `  ${avRef(f.anonVma)} -> ${folioNode(f.id)}${attrs({ dir: 'back', style: 'dotted', label: `mapping`, color, fontcolor: color, penwidth: isNew ? 2.5 : 1 })};`,
      );
    }
  }

  // PTE edges: the page's cell -> the folio it maps.
  const ghostFolios = new Set<Id>();
  for (const m of mms) {
    const pagesMapped = ptePages(m.ptes);
    for (const p of pagesMapped) {
      const pte = m.ptes[p]!;
      if (pte.folio !== ZERO_PAGE && !s.folios[pte.folio] && !ghostFolios.has(pte.folio)) {
        ghostFolios.add(pte.folio);
        out.push(`  ${folioNode(pte.folio)}${attrs({ shape: 'note', style: 'dashed', color: VIOLATED, fontcolor: VIOLATED, label: `${n.folio(pte.folio)}\n(missing)` })};`);
      }
      const isNew = before !== null && !same(before.mms[m.id]?.ptes[p], pte);
      const isBad = pte.folio >= 0 && bad.folios.has(pte.folio) && bad.mms.has(m.id);
      const color = isBad ? VIOLATED : isNew ? CHANGED : '#555555';
      out.push(
        `  ${mmNode(m.id)}:${ptePort(p)}:s -> ${folioNode(pte.folio)}${attrs({
          label: `page ${p}${pte.writable ? ' w' : ''}`,
          color,
          fontcolor: color,
          penwidth: isBad || isNew ? 2.5 : 1,
          tooltip: `${n.mm(m.id)} page ${p} -> ${n.pteTarget(pte.folio)}`,
        })};`,
      );
    }
  }

  // Threads in flight (lock granularity): where each is, and an edge to every lock it holds.
  const threads = values(s.threads).sort((a, b) => a.id - b.id);
  if (threads.length > 0) {
    out.push('  subgraph cluster_threads {');
    out.push(`    graph${attrs({ label: 'threads', style: 'rounded,dashed', color: '#888888' })};`);
    for (const t of threads) {
      const j = threadToJson(t);
      const isNew = before !== null && JSON.stringify(threadOf(before, t.id) && threadToJson(threadOf(before, t.id)!)) !== JSON.stringify(j);
      out.push(
        `    thread_${t.id}${attrs({
          shape: 'cds',
          style: 'filled',
          fillcolor: isNew ? CHANGED_FILL : '#fff8e1',
          color: isNew ? CHANGED : 'black',
          label: `${j.id} ${j.syscall !== undefined ? j.syscall.replace(/^P\d+ /, '') : `${j.walker} ${j.folio}`}\nat ${j.at}`,
        })};`,
      );
    }
    out.push('  }');
    for (const t of threads)
      for (const hl of t.held) {
        const target = hl.cls === 'anon_vma_rwsem' ? avRef(hl.id) : hl.cls === 'folio_lock' ? folioNode(hl.id) : s.mms[hl.id] ? mmNode(hl.id) : null;
        if (target === null) continue;
        const label = `${hl.cls === 'anon_vma_rwsem' ? 'rwsem' : hl.cls.replace('_lock', '')}${hl.write ? '' : ' (read)'}`;
        out.push(`  thread_${t.id} -> ${target}${attrs({ style: 'bold', color: '#e65100', fontcolor: '#e65100', label, constraint: 'false' })};`);
      }
  }

  out.push('}');
  return out.join('\n') + '\n';
}

/** The title of step i of a trace. */
export function stepTitle(steps: readonly TraceStep[], i: number): string {
  const text = steps[i]!.text;
  return i === 0 ? `step 0: ${text === '' ? 'initial state' : text}` : `step ${i}: ${text}`;
}

/** One DOT per step (step 0 = the initial state); the violations are marked on the last step only. */
export function traceDot(steps: readonly TraceStep[], violations: readonly PictureViolation[] = [], opts: { pages?: number } = {}): string[] {
  return steps.map((st, i) =>
    stepDot(i === 0 ? null : steps[i - 1]!.state, st.state, {
      title: stepTitle(steps, i),
      violations: i === steps.length - 1 ? violations : [],
      ...(opts.pages !== undefined ? { pages: opts.pages } : {}),
    }),
  );
}
