// One self-contained HTML page for a trace: the steps on the left (a
// clickable list), the selected step's picture (inline SVG from dot.ts and
// svg.ts) and its state (renderState) and change (renderDiff) on the right.
// Keyboard: ArrowDown/ArrowRight/j next step, ArrowUp/ArrowLeft/k previous,
// Home/End first/last. No network: no external scripts, styles, fonts or images.
// The page opens on the last step, where the violation is (issue 14), and
// the text panels are stacked and wrap, so none is cut off on a narrow window.

import type { State } from '../../models/mm/state.ts';
import { stepTitle, traceDot, type PictureViolation, type TraceStep } from './dot.ts';
import { renderSvg } from './svg.ts';
import { renderDiff, renderState } from './text.ts';

export interface TraceHtmlOptions {
  title: string;
  steps: { text: string; state: State }[];
  violations: PictureViolation[];
  /** Pages in each address space (the model's bound), for the rulers. */
  pages?: number;
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const CSS = `
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font-family: Helvetica, Arial, sans-serif; font-size: 14px; color: #222; }
body { display: flex; flex-direction: column; }
header { padding: 8px 14px; border-bottom: 1px solid #ccc; background: #fafafa; }
header h1 { font-size: 17px; margin: 0 0 4px 0; }
header .violation { color: #b00; font-family: monospace; white-space: pre-wrap; }
header .help { color: #666; font-size: 12px; }
main { flex: 1; display: flex; min-height: 0; }
nav { width: 300px; min-width: 220px; overflow-y: auto; border-right: 1px solid #ccc; background: #fcfcfc; }
nav ol { list-style: none; margin: 0; padding: 0; }
nav li { padding: 5px 10px; cursor: pointer; border-bottom: 1px solid #eee; font-family: monospace; font-size: 13px; }
nav li:hover { background: #eef4ff; }
nav li.current { background: #1f6fd1; color: white; }
nav li.violated { border-left: 4px solid #d11f1f; }
nav li .n { display: inline-block; min-width: 2.2em; color: inherit; opacity: 0.7; }
#view { flex: 1; overflow: auto; padding: 10px 14px; }
.step { display: none; }
.step.current { display: block; }
.step h2 { font-size: 15px; margin: 0 0 8px 0; font-family: monospace; }
.picture { overflow: auto; border: 1px solid #ddd; padding: 4px; background: white; }
.picture svg { max-width: 100%; height: auto; }
.texts { display: flex; flex-direction: column; gap: 10px; margin-top: 10px; }
.texts h3 { font-size: 13px; margin: 4px 0; color: #555; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 8px; margin: 0; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
pre.violations { color: #b00; white-space: pre-wrap; }
`;

const SCRIPT = `
(function () {
  var items = Array.prototype.slice.call(document.querySelectorAll('nav li'));
  var steps = Array.prototype.slice.call(document.querySelectorAll('.step'));
  var current = 0;
  function show(i) {
    if (i < 0) i = 0;
    if (i > steps.length - 1) i = steps.length - 1;
    current = i;
    for (var k = 0; k < steps.length; k++) {
      steps[k].classList.toggle('current', k === i);
      items[k].classList.toggle('current', k === i);
      items[k].setAttribute('aria-selected', k === i ? 'true' : 'false');
    }
    items[i].scrollIntoView({ block: 'nearest' });
    document.body.setAttribute('data-step', String(i));
    if (history.replaceState) { try { history.replaceState(null, '', '#step-' + i); } catch (e) {} }
  }
  items.forEach(function (li, i) { li.addEventListener('click', function () { show(i); }); });
  document.addEventListener('keydown', function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var k = e.key;
    if (k === 'ArrowDown' || k === 'ArrowRight' || k === 'j') { show(current + 1); e.preventDefault(); }
    else if (k === 'ArrowUp' || k === 'ArrowLeft' || k === 'k') { show(current - 1); e.preventDefault(); }
    else if (k === 'Home') { show(0); e.preventDefault(); }
    else if (k === 'End') { show(steps.length - 1); e.preventDefault(); }
  });
  var m = /^#step-(\\d+)$/.exec(location.hash);
  show(m ? Number(m[1]) : Number(document.body.getAttribute('data-start')));
})();
`;

/** The trace as one self-contained HTML page (see the file comment). */
export async function traceHtml(opts: TraceHtmlOptions): Promise<string> {
  const steps: TraceStep[] = opts.steps;
  const dots = traceDot(steps, opts.violations, opts.pages !== undefined ? { pages: opts.pages } : {});
  const svgs: string[] = [];
  // Prefix the ids Graphviz gives (graph0, node1, edge1, ...) so the pictures' ids stay unique in one page.
  for (const [i, dot] of dots.entries()) svgs.push((await renderSvg(dot)).replace(/ id="/g, ` id="s${i}-`));
  const last = steps.length - 1;
  const violationText = opts.violations.map((v) => `${v.property}: ${v.detail}`).join('\n');

  const list = steps
    .map((st, i) => {
      const text = i === 0 ? (st.text === '' ? 'initial state' : st.text) : st.text;
      const cls = i === last && opts.violations.length > 0 ? ' class="violated"' : '';
      return `<li id="item-${i}" data-step="${i}"${cls} role="option"><span class="n">${i}</span>${esc(text)}</li>`;
    })
    .join('\n');

  const panes = steps
    .map((st, i) => {
      const diff = i === 0 ? '' : renderDiff(steps[i - 1]!.state, st.state) || '(no change)';
      const vs = i === last && opts.violations.length > 0 ? `<section><h3>violated</h3><pre class="violations">${esc(violationText)}</pre></section>` : '';
      return [
        `<article class="step" id="step-${i}" data-step="${i}">`,
        `<h2>${esc(stepTitle(steps, i))}</h2>`,
        `<div class="picture">${svgs[i]!}</div>`,
        `<div class="texts">`,
        vs,
        i === 0 ? '' : `<section><h3>what changed</h3><pre class="diff">${esc(diff)}</pre></section>`,
        `<section><h3>state</h3><pre class="state">${esc(renderState(st.state))}</pre></section>`,
        `</div>`,
        `</article>`,
      ].join('\n');
    })
    .join('\n');

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(opts.title)}</title>
<style>${CSS}</style>
</head>
<body data-step="${last}" data-start="${last}">
<header>
<h1>${esc(opts.title)}</h1>
${violationText === '' ? '' : `<div class="violation">${esc(violationText)}</div>`}
<div class="help">${steps.length} steps. Keys: &darr;/&rarr;/j next, &uarr;/&larr;/k previous, Home/End first/last; click a step. Blue: changed by the step; red: named by the violation (last step).</div>
</header>
<main>
<nav><ol role="listbox" aria-label="steps">
${list}
</ol></nav>
<div id="view">
${panes}
</div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
