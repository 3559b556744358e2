// Pictures of a trace: DOT per step (src/report/dot.ts), SVG through
// @viz-js/viz (src/report/svg.ts), and the self-contained HTML page
// (src/report/html.ts) opened in headless Chromium.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMmModel } from '../models/mm/model.ts';
import type { State } from '../models/mm/state.ts';
import { stepDot, traceDot, violatedObjects } from '../src/report/dot.ts';
import { traceHtml } from '../src/report/html.ts';
import { renderSvg } from '../src/report/svg.ts';

const CHROMIUM = '/usr/bin/chromium';
const OUT = 'test-output';

function trace(ops: string[]): { text: string; state: State }[] {
  const m = createMmModel({ bounds: { procs: 3, pages: 8, maxLen: 4 } });
  let s = m.initial();
  const steps = [{ text: 'initial state', state: s }];
  for (const t of ops) {
    s = m.next(s, m.parseAction(s, t));
    steps.push({ text: t, state: s });
  }
  return steps;
}

const OPS = ['P0 mmap 0 4', 'P0 fault 1 w', 'P0 fork', 'P1 fault 3 w', 'P1 munmap 0 2', 'P0 exit'];
// A made-up violation naming objects of the last state by model id (as properties/util.ts names them).
const VIOLATIONS = [{ property: 'rmap-coverage', detail: 'P1 page 3 -> F1 in V2 [2,4) of P1 is not visited by rmap_walk_anon(F1) over A1' }];

/** The DOT statement (one line) that defines node or edge `head`. */
const line = (dot: string, head: string): string => {
  const l = dot.split('\n').find((x) => x.trimStart().startsWith(head));
  if (l === undefined) throw new Error(`no line starting with ${head} in\n${dot}`);
  return l;
};

describe('DOT pictures', () => {
  const steps = trace(OPS);
  const dots = traceDot(steps, VIOLATIONS, { pages: 8 });

  it('gives one deterministic DOT per step, step 0 being the initial state', () => {
    expect(dots).toHaveLength(OPS.length + 1);
    expect(traceDot(trace(OPS), VIOLATIONS, { pages: 8 })).toEqual(dots);
    for (const d of dots) {
      expect(d.startsWith('digraph mmstate {')).toBe(true);
      expect(d.trimEnd().endsWith('}')).toBe(true);
    }
    expect(dots[0]).toContain('step 0: initial state');
    expect(dots[0]).toContain('subgraph cluster_mm_0');
    expect(dots[0]).not.toContain('#1f6fd1'); // nothing highlighted without a previous state
    // The ruler covers the 8-page address space.
    expect(dots[0]).toContain('<FONT POINT-SIZE="9">7</FONT>');
  });

  it('draws the mmap as a highlighted VMA cell with range, pgoff and prot', () => {
    const d = dots[1]!;
    expect(d).toContain('step 1: P0 mmap 0 4');
    expect(d).toMatch(/<TD PORT="v0" COLSPAN="4" BGCOLOR="#dcebff" COLOR="#1f6fd1" BORDER="3"[^>]*><B>\[0,4\)<BR\/>pgoff 0 rw<\/B><\/TD>/);
    expect(d).not.toContain('cluster_anon_vmas');
  });

  it('draws the first write fault: anon_vma, AVC edge, folio with mapping/index/mapcount, PTE edge', () => {
    const d = dots[2]!;
    expect(line(d, 'av_0 [')).toContain('label="A0 (root)\\nref 1 ch 1 act 1\\ntree [P0:0-4]"');
    expect(line(d, 'av_0 [')).toContain('color="#1f6fd1"');
    expect(line(d, 'mm_0:v0:s -> av_0')).toContain('label="0*"');
    expect(line(d, 'folio_0 [')).toContain('label="F0\\nmapping A0 index 1\\nmapcount 1 exclusive"');
    expect(line(d, 'mm_0:p1:s -> folio_0')).toContain('label="page 1 w"');
    expect(line(d, 'mm_0:p1:s -> folio_0')).toContain('color="#1f6fd1"');
    expect(line(d, 'av_0 -> folio_0')).toContain('label="mapping"');
  });

  it('draws fork: the new process, the parent edge, chain positions, the unchanged VMA of P0 plain', () => {
    const d = dots[3]!;
    expect(line(d, 'graph [label="P1 (forked from P0)"')).toContain('color="#1f6fd1"');
    expect(line(d, 'av_0 -> av_1')).toContain('label="parent"');
    expect(line(d, 'mm_1:v1:s -> av_1')).toContain('label="0*"');
    expect(line(d, 'mm_1:v1:s -> av_0')).toContain('label="1"');
    expect(line(d, 'mm_0:v0:s -> av_0')).toContain('color="#2e7d32"'); // unchanged AVC
    expect(d).toMatch(/<TD PORT="v0" COLSPAN="4" BGCOLOR="#fff8e1" COLOR="black" BORDER="1"/); // P0's VMA unchanged
    expect(line(d, 'mm_0:p1:s -> folio_0')).toContain('label="page 1"'); // write-protected by fork: changed
    expect(line(d, 'mm_0:p1:s -> folio_0')).toContain('color="#1f6fd1"');
    expect(line(d, 'folio_0 [')).toContain('mapcount 2');
  });

  it('draws root edges dotted when root differs from parent', () => {
    const d = traceDot(trace(['P0 mmap 0 2', 'P0 fault 0 w', 'P0 fork', 'P1 fork']))[4]!;
    expect(line(d, 'av_1 -> av_2')).toContain('label="parent"');
    expect(line(d, 'av_2 -> av_0')).toMatch(/style="dotted", label="root", constraint="false"/);
  });

  it('marks freed anon_vmas dashed and grey, removed objects in the caption', () => {
    const ts = trace(['P0 mmap 0 2', 'P0 fault 0 w', 'P0 fork', 'P1 fault 0 w', 'P1 exit']);
    const d = traceDot(ts)[5]!;
    const freed = Object.values(ts[5]!.state.anonVmas).filter((a) => a.freed);
    if (freed.length > 0) {
      expect(line(d, `av_${freed[0]!.id} [`)).toMatch(/style="dashed/);
      expect(line(d, `av_${freed[0]!.id} [`)).toContain('FREED');
    } else {
      expect(d).not.toContain('av_1 [');
    }
    expect(d).toMatch(/removed: P1/);
    expect(d).not.toContain('cluster_mm_1');
  });

  it('marks the objects the violation names red on the last step only', () => {
    const d = dots[6]!;
    expect(d).toContain('VIOLATED rmap-coverage: P1 page 3 -&gt; F1 in V2 [2,4) of P1');
    expect(line(d, 'folio_1 [')).toContain('color="#d11f1f"');
    expect(line(d, 'av_1 [')).toContain('color="#d11f1f"');
    expect(d).toMatch(/<TD PORT="v2" [^>]*COLOR="#d11f1f"/);
    expect(d).toMatch(/<TD PORT="p3" BGCOLOR="#ffd9d9"><B>F1 w v\d+<\/B><\/TD>/); // F1 keeps its name after F0 was freed (and shows what was written)
    expect(line(d, 'mm_1:p3:s -> folio_1')).toContain('color="#d11f1f"');
    expect(line(d, 'graph [label="P1 (forked from')).toContain('color="#d11f1f"'); // P1 keeps its name after P0's exit
    expect(line(d, 'av_0 [')).not.toContain('#d11f1f');
    expect(d).not.toContain('VIOLATED names are model ids'); // display names are the model ids: no aliases to explain
    for (const earlier of dots.slice(0, -1)) expect(earlier).not.toContain('#d11f1f');
    const v = violatedObjects([{ property: 'x', detail: 'AVC5 (V3 -> A1) F2 P0 AVCX A' }]);
    expect([...v.avcs, ...v.vmas, ...v.anonVmas, ...v.folios, ...v.mms]).toEqual([5, 3, 1, 2, 0]);
  });

  it('stepDot without a previous state highlights nothing', () => {
    const d = stepDot(null, steps[3]!.state, { title: 'just a state' });
    expect(d).toContain('just a state');
    expect(d).not.toContain('#1f6fd1');
    expect(d).not.toContain('#d11f1f');
  });
});

describe('SVG pictures', () => {
  it('renders every step to well-formed SVG with the node titles', async () => {
    const steps = trace(OPS);
    const dots = traceDot(steps, VIOLATIONS, { pages: 8 });
    mkdirSync(OUT, { recursive: true });
    for (const [i, dot] of dots.entries()) {
      const svg = await renderSvg(dot);
      writeFileSync(`${OUT}/pictures-step${i}.svg`, svg);
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(svg.match(/<svg\b/g)).toHaveLength(1);
      expect(svg.match(/<\/svg>/g)).toHaveLength(1);
      // Balanced element tags (the SVG is XML: every opening tag closed or self-closed, in order).
      const stack: string[] = [];
      for (const m of svg.replace(/<!--[\s\S]*?-->/g, '').matchAll(/<(\/?)([A-Za-z][\w:.-]*)[^>]*?(\/?)>/g)) {
        if (m[1] === '/') expect(stack.pop()).toBe(m[2]);
        else if (m[3] !== '/') stack.push(m[2]!);
      }
      expect(stack).toEqual([]);
      const st = steps[i]!.state;
      for (const id of Object.keys(st.mms)) expect(svg).toContain(`<title>mm_${id}</title>`);
      for (const id of Object.keys(st.anonVmas)) expect(svg).toContain(`<title>av_${id}</title>`);
      for (const id of Object.keys(st.folios)) expect(svg).toContain(`<title>folio_${id}</title>`);
      if (i >= 2) expect(svg).toMatch(/<title>(av|folio)_0<\/title>/);
    }
    const last = await renderSvg(dots.at(-1)!);
    expect(last).toContain('<title>av_0&#45;&gt;av_1</title>');
    expect(last).toContain('#d11f1f');
  });

  it('reports a DOT error clearly', async () => {
    await expect(renderSvg('digraph { a -> }')).rejects.toThrow(/Graphviz could not render/);
  });
});

describe('HTML page', () => {
  const steps = trace(OPS);

  it('is one self-contained file with every step', async () => {
    const html = await traceHtml({ title: 'mmcheck trace <demo>', steps, violations: VIOLATIONS, pages: 8 });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<(script|link|img|iframe)[^>]+(src|href)=/i);
    expect(html).not.toMatch(/url\(\s*['"]?https?:/i);
    expect(html).toContain('mmcheck trace &lt;demo&gt;');
    for (let i = 0; i <= OPS.length; i++) expect(html).toContain(`id="step-${i}"`);
    expect(html.match(/<svg\b/g)).toHaveLength(OPS.length + 1);
  });

  it.skipIf(!existsSync(CHROMIUM))(`shows every step and navigates with the keyboard in headless Chromium (${CHROMIUM})`, async () => {
    const { chromium } = await import('playwright-core');
    const html = await traceHtml({ title: 'mmcheck trace', steps, violations: VIOLATIONS, pages: 8 });
    mkdirSync(OUT, { recursive: true });
    writeFileSync(`${OUT}/pictures.html`, html);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1500, height: 1100 } });
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.setContent(html, { waitUntil: 'load' });

      const items = page.locator('nav li');
      await expect(items.count()).resolves.toBe(steps.length);
      const current = async (): Promise<string | null> => page.locator('body').getAttribute('data-step');
      const visible = async (): Promise<string[]> =>
        page.$$eval('.step', (els) => els.filter((e) => (e as HTMLElement).offsetParent !== null).map((e) => e.id));

      // It opens on the last step, the violating one; Home goes to the start.
      expect(await current()).toBe(String(steps.length - 1));
      expect(await visible()).toEqual([`step-${steps.length - 1}`]);
      // No text panel is cut off at 1400 px: nothing is wider than its box.
      await page.setViewportSize({ width: 1400, height: 1000 });
      const clipped = await page.$$eval(`#step-${steps.length - 1} pre`, (els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1).length);
      expect(clipped).toBe(0);
      await page.keyboard.press('Home');
      expect(await current()).toBe('0');
      expect(await visible()).toEqual(['step-0']);

      // Every step is reachable with j / ArrowDown / ArrowRight, and shows its picture and state.
      for (let i = 1; i < steps.length; i++) {
        await page.keyboard.press(['j', 'ArrowDown', 'ArrowRight'][i % 3]!);
        expect(await current()).toBe(String(i));
        expect(await visible()).toEqual([`step-${i}`]);
        const pane = page.locator(`#step-${i}`);
        await expect(pane.locator('svg').count()).resolves.toBe(1);
        expect(await pane.locator('h2').textContent()).toBe(`step ${i}: ${OPS[i - 1]}`);
        // P0 until its exit in the last step; then P1 alone, its parent named by id.
        expect(await pane.locator('pre.state').textContent()).toMatch(i < steps.length - 1 ? /^P0\n/ : /^P1 \(forked from P0 \(exited\)\)\n/);
        expect(await pane.locator('svg').boundingBox()).not.toBeNull();
      }
      await page.keyboard.press('j'); // past the end: stays on the last step
      expect(await current()).toBe(String(steps.length - 1));
      await expect(page.locator(`#step-${steps.length - 1} pre.violations`).textContent()).resolves.toContain('rmap-coverage');
      await page.screenshot({ path: `${OUT}/pictures-last-step.png`, fullPage: false });

      await page.keyboard.press('k');
      expect(await current()).toBe(String(steps.length - 2));
      await page.keyboard.press('ArrowUp');
      await page.keyboard.press('ArrowLeft');
      expect(await current()).toBe(String(steps.length - 4));
      await page.keyboard.press('Home');
      expect(await current()).toBe('0');
      await page.keyboard.press('End');
      expect(await current()).toBe(String(steps.length - 1));

      // The step list is clickable.
      await items.nth(3).click();
      expect(await current()).toBe('3');
      expect(await visible()).toEqual(['step-3']);
      expect(await items.nth(3).getAttribute('class')).toContain('current');
      await page.screenshot({ path: `${OUT}/pictures-fork-step.png`, fullPage: false });

      expect(errors).toEqual([]);
      expect(requests.filter((u) => !u.startsWith('about:') && !u.startsWith('data:'))).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

describe('issue 14: what the trace page shows first, and what it marks', () => {
  it('the HTML page opens on the last (violating) step, and its text panels wrap rather than clip', async () => {
    const steps = trace(OPS);
    const html = await traceHtml({ title: 't', steps, violations: VIOLATIONS, pages: 8 });
    expect(html).toContain(`data-start="${steps.length - 1}"`);
    expect(html).toMatch(/pre \{[^}]*white-space: pre-wrap/);
    expect(html).toMatch(/\.texts \{[^}]*flex-direction: column/);
  });

  it('a violation that names no object (a kernel assert) marks what the step changed, and says so', () => {
    const steps = trace(['P0 mmap 0 4', 'P0 fault 1 w']);
    const assert = [{ property: 'kernel-asserts', detail: 'check_anon_vma_clone: merge from a non-singular chain' }];
    expect(Object.values(violatedObjects(assert)).every((x) => x.size === 0)).toBe(true);
    const last = traceDot(steps, assert, { pages: 8 }).at(-1)!;
    expect(last).toContain('the violation names no object: red is what this step changed');
    // The faulted PTE and the new anon_vma are red, not only blue.
    expect(last).toContain('#ffd9d9');
    expect(line(last, 'av_0')).toContain('#d11f1f');
  });

  it('a VMA replaced over the same range is drawn changed, not also listed as removed', () => {
    const steps = trace(['P0 mmap 0 2', 'P0 mremap 0 1 3 1 maymove,fixed,dontunmap', 'P0 mremap 1 1 3 1 maymove,fixed']);
    const last = traceDot(steps, [], { pages: 8 }).at(-1)!;
    expect(last).not.toMatch(/removed: [^<]*vma P0:3-4/);
    expect(last).toMatch(/COLSPAN="1" BGCOLOR="#dcebff" COLOR="#1f6fd1"[^>]*TOOLTIP="P0:3-4/);
  });
});
