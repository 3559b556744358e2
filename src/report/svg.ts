// SVG from DOT, rendered in-process by @viz-js/viz (Graphviz compiled to
// WebAssembly): no system binaries. The WebAssembly instance is created once
// and reused.

import { instance, type Viz } from '@viz-js/viz';

let viz: Promise<Viz> | undefined;

/** Render a DOT graph to an SVG document (starting at <svg, without XML prolog or DOCTYPE). Throws on a DOT error. */
export async function renderSvg(dot: string): Promise<string> {
  viz ??= instance();
  const v = await viz;
  const r = v.render(dot, { format: 'svg', engine: 'dot' });
  if (r.status !== 'success') {
    const msgs = r.errors.map((e) => `${e.level ?? 'error'}: ${e.message.trim()}`).join('; ');
    throw new Error(`Graphviz could not render the picture: ${msgs}`);
  }
  const svg = r.output;
  const at = svg.indexOf('<svg');
  return at < 0 ? svg : svg.slice(at);
}
