// Readable text for a state and for one step's change (DESIGN.md §7: replay
// prints every step). Display names come from json.ts's displayNames, so the
// text and the JSON of a state always agree.

import { contentName } from '../../properties/user.ts';
import { formatResult } from '../../models/mm/ops.ts';
import { NIL, USER_ZERO, ptePages, values, type AnonVma, type Folio, type Id, type State, type Vma } from '../../models/mm/state.ts';
import { chainAnonVmas, displayNames, mmAlive, protString, threadToJson, vmaMarks, type Names } from './json.ts';

function vmaLine(s: State, n: Names, v: Vma): string {
  const parts = [`[${v.start},${v.end})`, `pgoff ${v.pgoff}`, protString(v.flags) || '---'];
  parts.push(v.anonVma === NIL ? 'anon none' : `anon ${n.anonVma(v.anonVma)}`);
  parts.push(`chain [${chainAnonVmas(s, v).map(n.anonVma).join(' ')}]`);
  parts.push(...vmaMarks(v));
  return parts.join(' ');
}

const pteLine = (n: Names, page: number, folio: Id, writable: boolean): string =>
  `${page}->${n.pteTarget(folio)}${writable ? ' w' : ''}`;

function anonVmaCounters(a: AnonVma): string {
  const ext = a.ext ? Object.entries(a.ext).map(([k, v]) => ` ${k} ${v}`) : [];
  return `ref ${a.refcount} ch ${a.numChildren} act ${a.numActiveVmas}${ext.join('')}`;
}

function anonVmaLine(s: State, n: Names, a: AnonVma): string {
  const tree = a.tree.map((avc) => {
    const c = s.avcs[avc];
    return c ? n.vma(c.vma) : `avc?${avc}`;
  });
  const root = a.root === a.id ? 'root' : `root ${n.anonVma(a.root)}`;
  return `${n.anonVma(a.id)} ${root} ${anonVmaCounters(a)} tree [${tree.join(', ')}]${a.freed ? ' FREED' : ''}`;
}

function folioLine(n: Names, f: Folio): string {
  const parts = [
    n.folio(f.id),
    f.anonVma === NIL ? 'mapping none' : `mapping ${n.anonVma(f.anonVma)}`,
    `index ${f.index}`,
    `mapcount ${f.mapcount}`,
  ];
  if (f.nrPages > 1) parts.push(`pages ${f.nrPages}`);
  if (f.exclusive !== 0) parts.push(f.nrPages > 1 ? `exclusive 0x${f.exclusive.toString(16)}` : 'exclusive');
  if (f.pinned) parts.push('pinned');
  if (f.locked !== NIL) parts.push('locked');
  return parts.join(' ');
}

/**
 * The process a fork came from. Fork never reuses a process id, so a parent
 * that is no longer in the state has exited: "P0 (exited)" (its model id, as
 * displayNames names processes), not the dangling "P?0".
 */
const parentName = (s: State, n: Names, parent: Id): string =>
  s.mms[parent] !== undefined ? n.mm(parent) : `P${parent} (exited)`;

/** The whole state: processes with VMAs and PTEs, the anon_vma tree, folios, warnings. */
export function renderState(s: State): string {
  const n = displayNames(s);
  const out: string[] = [];
  const mms = values(s.mms).sort((a, b) => a.id - b.id);
  if (mms.length === 0) out.push('no processes');
  for (const m of mms) {
    const parent = m.parent === NIL ? '' : ` (forked from ${parentName(s, n, m.parent)})`;
    out.push(`${n.mm(m.id)}${mmAlive(m) ? '' : ' exited'}${parent}`);
    for (const id of m.vmas) {
      const v = s.vmas[id];
      out.push(v ? `  vma ${vmaLine(s, n, v)}` : `  vma ?${id} (missing)`);
    }
    const ptes = ptePages(m.ptes).map((page) => [page, m.ptes[page]!] as const);
    if (ptes.length > 0) out.push(`  ptes ${ptes.map(([page, p]) => pteLine(n, page, p.folio, p.writable)).join(', ')}`);
  }

  const avs = values(s.anonVmas).sort((a, b) => a.id - b.id);
  if (avs.length > 0) {
    out.push('anon_vmas');
    // Indented by parent; an anon_vma whose parent is itself, NIL or unknown starts a tree.
    const children = new Map<Id, AnonVma[]>();
    const tops: AnonVma[] = [];
    for (const a of avs) {
      if (a.parent === a.id || a.parent === NIL || !s.anonVmas[a.parent]) tops.push(a);
      else children.set(a.parent, [...(children.get(a.parent) ?? []), a]);
    }
    const seen = new Set<Id>();
    const walk = (a: AnonVma, depth: number): void => {
      if (seen.has(a.id)) {
        out.push(`${'  '.repeat(depth + 1)}${n.anonVma(a.id)} (cycle)`);
        return;
      }
      seen.add(a.id);
      out.push(`${'  '.repeat(depth + 1)}${anonVmaLine(s, n, a)}`);
      for (const c of children.get(a.id) ?? []) walk(c, depth + 1);
    };
    for (const a of tops) walk(a, 0);
    // Parent links that form a cycle never reach a top: print them too.
    for (const a of avs) if (!seen.has(a.id)) walk(a, 0);
  }

  const folios = values(s.folios).sort((a, b) => a.id - b.id);
  if (folios.length > 0) {
    out.push('folios');
    for (const f of folios) out.push(`  ${folioLine(n, f)}`);
  }
  const threads = threadLines(s);
  if (threads.length > 0) out.push('threads', ...threads.map((t) => `  ${t}`));
  // Memory contents: the pages each process maps to written content, and the last syscall's failure.
  const contents = mms.flatMap((m) =>
    ptePages(m.ptes).flatMap((page) => {
      const p = m.ptes[page]!;
      const x = p.folio >= 0 ? s.folios[p.folio]?.data[p.sub] : undefined;
      return x !== undefined && x !== USER_ZERO ? [`${n.mm(m.id)}:${page}=${contentName(x)}`] : [];
    }),
  );
  if (contents.length > 0) out.push(`contents ${contents.join(' ')}`);
  if (s.result !== undefined && s.result.ret !== 0) out.push(`result ${n.mm(s.result.proc)} ${formatResult(s.result.ret)}`);
  if (s.warnings.length > 0) out.push(`warnings ${s.warnings.join(', ')}`);
  return out.join('\n');
}

/** Threads in flight (lock granularity): what each runs, where it is, what it holds. */
function threadLines(s: State): string[] {
  return values(s.threads)
    .sort((a, b) => a.id - b.id)
    .map((t) => {
      const j = threadToJson(t);
      const what = j.syscall !== undefined ? `in ${j.syscall.replace(/^P\d+(\.\d+)? /, '')}` : `${j.walker} of ${j.folio}`;
      return `${j.id} ${what} at ${j.at}${j.holds.length > 0 ? `, holds ${j.holds.join(', ')}` : ''}`;
    });
}


function changes(pairs: [string, unknown, unknown][]): string[] {
  return pairs
    .filter(([, a, b]) => JSON.stringify(a) !== JSON.stringify(b))
    .map(([k, a, b]) => `${k} ${String(a)}->${String(b)}`);
}

/**
 * What changed between two states, matched by the model's ids: processes,
 * VMAs, PTEs, anon_vmas, AVCs, folios, new warnings. Objects are named as in
 * `after`, removed ones as in `before`. Empty string when nothing changed.
 */
export function renderDiff(before: State, after: State): string {
  const nb = displayNames(before);
  const na = displayNames(after);
  const out: string[] = [];

  const mmIds = [...new Set([...values(before.mms), ...values(after.mms)].map((m) => m.id))].sort((a, b) => a - b);
  for (const id of mmIds) {
    const mb = before.mms[id];
    const ma = after.mms[id];
    if (!ma) {
      out.push(`- ${nb.mm(id)} removed`);
      continue;
    }
    const name = na.mm(id);
    if (!mb) out.push(`+ ${name} created${ma.parent === NIL ? '' : ` (forked from ${parentName(after, na, ma.parent)})`}`);
    else if (mmAlive(mb) && !mmAlive(ma)) out.push(`~ ${name} exited`);
    const vb = new Set(mb?.vmas ?? []);
    const va = new Set(ma.vmas);
    for (const v of mb?.vmas ?? [])
      if (!va.has(v) && before.vmas[v]) out.push(`- ${name} vma ${vmaLine(before, nb, before.vmas[v]!)}`);
    for (const v of ma.vmas) {
      const x = after.vmas[v];
      if (!x) continue;
      const y = before.vmas[v];
      if (!vb.has(v) || !y) out.push(`+ ${name} vma ${vmaLine(after, na, x)}`);
      else {
        const was = vmaLine(before, nb, y);
        const now = vmaLine(after, na, x);
        if (was !== now) out.push(`~ ${name} vma ${was}  =>  ${now}`);
      }
    }
    const pages = [...new Set([...ptePages(mb?.ptes ?? []), ...ptePages(ma.ptes)])].sort((a, b) => a - b);
    for (const page of pages) {
      const pb = mb?.ptes[page];
      const pa = ma.ptes[page];
      if (pb && !pa) out.push(`- ${name} pte ${pteLine(nb, page, pb.folio, pb.writable)}`);
      else if (!pb && pa) out.push(`+ ${name} pte ${pteLine(na, page, pa.folio, pa.writable)}`);
      else if (pb && pa && (pb.folio !== pa.folio || pb.writable !== pa.writable || pb.sub !== pa.sub))
        out.push(`~ ${name} pte ${pteLine(nb, page, pb.folio, pb.writable)}  =>  ${pteLine(na, page, pa.folio, pa.writable)}`);
    }
  }

  const avIds = [...new Set([...values(before.anonVmas), ...values(after.anonVmas)].map((a) => a.id))].sort(
    (a, b) => a - b,
  );
  for (const id of avIds) {
    const ab = before.anonVmas[id];
    const aa = after.anonVmas[id];
    if (!aa) {
      out.push(`- ${nb.anonVma(id)} removed`);
      continue;
    }
    if (!ab) {
      out.push(`+ ${anonVmaLine(after, na, aa)}${aa.parent !== NIL && aa.parent !== aa.id ? ` parent ${na.anonVma(aa.parent)}` : ''}`);
      continue;
    }
    const name = na.anonVma(id);
    if (!ab.freed && aa.freed) out.push(`- ${name} freed`);
    const treeOf = (s: State, n: Names, a: AnonVma): string =>
      `[${a.tree.map((avc) => (s.avcs[avc] ? n.vma(s.avcs[avc]!.vma) : `avc?${avc}`)).join(', ')}]`;
    const ext = new Set([...Object.keys(ab.ext ?? {}), ...Object.keys(aa.ext ?? {})]);
    const c = changes([
      ['root', nb.anonVma(ab.root), na.anonVma(aa.root)],
      ['parent', nb.anonVma(ab.parent), na.anonVma(aa.parent)],
      ['ref', ab.refcount, aa.refcount],
      ['ch', ab.numChildren, aa.numChildren],
      ['act', ab.numActiveVmas, aa.numActiveVmas],
      ...[...ext].map((k): [string, unknown, unknown] => [k, ab.ext?.[k], aa.ext?.[k]]),
      ['tree', treeOf(before, nb, ab), treeOf(after, na, aa)],
    ]);
    if (c.length > 0) out.push(`~ ${name} ${c.join(' ')}`);
  }

  const avcDesc = (s: State, n: Names, id: Id): string => {
    const c = s.avcs[id]!;
    return `avc ${n.vma(c.vma)} -> ${n.anonVma(c.anonVma)}${c.inTree ? '' : ' (not in tree)'}`;
  };
  for (const id of Object.keys(before.avcs).map(Number))
    if (!after.avcs[id]) out.push(`- ${avcDesc(before, nb, id)}`);
  for (const id of Object.keys(after.avcs).map(Number)) {
    const cb = before.avcs[id];
    const ca = after.avcs[id]!;
    if (!cb) out.push(`+ ${avcDesc(after, na, id)}`);
    else if (cb.vma !== ca.vma || cb.anonVma !== ca.anonVma || cb.inTree !== ca.inTree)
      out.push(`~ ${avcDesc(before, nb, id)}  =>  ${avcDesc(after, na, id)}`);
  }

  const foIds = [...new Set([...values(before.folios), ...values(after.folios)].map((f) => f.id))].sort(
    (a, b) => a - b,
  );
  for (const id of foIds) {
    const fb = before.folios[id];
    const fa = after.folios[id];
    if (!fa) out.push(`- ${nb.folio(id)} freed`);
    else if (!fb) out.push(`+ ${folioLine(na, fa)}`);
    else {
      const was = folioLine(nb, fb);
      const now = folioLine(na, fa);
      const name = na.folio(id);
      if (was.slice(nb.folio(id).length) !== now.slice(na.folio(id).length))
        out.push(`~ ${name}${was.slice(nb.folio(id).length)}  =>  ${now.slice(na.folio(id).length + 1)}`);
    }
  }

  const was = new Map(threadLines(before).map((l) => [l.split(' ')[0]!, l]));
  const now = new Map(threadLines(after).map((l) => [l.split(' ')[0]!, l]));
  for (const [id, l] of was) if (!now.has(id)) out.push(`- thread ${id} finished`);
  for (const [id, l] of now) if (was.get(id) !== l) out.push(`${was.has(id) ? '~' : '+'} thread ${l}`);

  const oldWarnings = new Set(before.warnings);
  for (const w of after.warnings) if (!oldWarnings.has(w)) out.push(`! warning ${w}`);
  return out.join('\n');
}
