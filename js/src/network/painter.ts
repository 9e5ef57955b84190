/**
 * Painting the network on a canvas (and the same picture as SVG): units as cells coloured by their slope on the
 * viridis scale with forced states marked, or, for big networks, one strip per layer binned into pixel rows.
 */

import { MARK_CONTRAST, contrastRatio, viridis } from '../colormap';
import { LABEL_PX, type Geometry, type Skip } from '../geometry';
import { UnitState } from '../network_view_types';
import type { Overview } from './overview';
import type { UnitData } from './units';

export const SCALE = viridis();

export interface Theme {
  font: string;
  text: string;
  muted: string;
  band: string;
  skip: string;
  accent: string;
  /** The background the units are drawn on. */
  bg: string;
}

const weakCache = new Map<string, Uint8Array>();

/** Per colour level, 1 where the level is below 3:1 against the background (such units get an edge). */
function weakLevels(ctx: CanvasRenderingContext2D, bg: string): Uint8Array {
  ctx.fillStyle = bg;
  const norm = String(ctx.fillStyle);
  let weak = weakCache.get(norm);
  if (!weak) {
    weak = Uint8Array.from(SCALE.fill, f => (contrastRatio(f, norm) < MARK_CONTRAST ? 1 : 0));
    weakCache.set(norm, weak);
  }
  return weak;
}

function cssVar(el: Element, name: string, fallback: string): string {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

/** The colours the canvas uses, read once from the element's CSS variables (theme changes re-read them). */
export function readTheme(el: Element): Theme {
  return {
    font: cssVar(el, '--jp-ui-font-family', 'system-ui, sans-serif'),
    text: cssVar(el, '--jp-ui-font-color1', '#222'),
    muted: cssVar(el, '--jp-ui-font-color2', '#555'),
    band: cssVar(el, '--jp-layout-color2', 'rgba(127,127,127,0.12)'),
    skip: cssVar(el, '--jp-ui-font-color2', '#888'),
    accent: cssVar(el, '--jp-brand-color1', '#1976d2'),
    bg: cssVar(el, '--jp-layout-color0', '#ffffff')
  };
}

export interface Label {
  text: string;
  x: number;
}

function bandsAndSkips(ctx: CanvasRenderingContext2D, theme: Theme,
  bands: { left: number; right: number; top: number; bottom: number }[],
  skips: Skip[]): void {
  ctx.fillStyle = theme.band;
  for (const b of bands) {
    ctx.fillRect(b.left, b.top, b.right - b.left, b.bottom - b.top);
  }
  ctx.lineWidth = 1.2;
  ctx.strokeStyle = theme.skip;
  for (const k of skips) {
    ctx.setLineDash(k.projection ? [3, 2] : []);
    ctx.beginPath();
    ctx.moveTo(k.x0, k.y0);
    ctx.quadraticCurveTo(k.cx, k.cy, k.x1, k.y1);
    ctx.stroke();
  }
  ctx.setLineDash([]);
}

/** Units mode: every shown unit (``shown[k]`` is the unit at geometry position k); the labels are elements. */
export function paintUnits(ctx: CanvasRenderingContext2D, g: Geometry, shown: number[], data: UnitData, theme: Theme,
  selection: Set<number>, hover: number, posOf: Int32Array): void {
  bandsAndSkips(ctx, theme, g.blockBands, g.skips);
  const s = g.cell;
  const inset = g.inset;
  const inks: Record<string, Path2D> = {};
  const weak = weakLevels(ctx, theme.bg);
  const edges = new Path2D();
  const glyph = s >= 9;
  const m = Math.max(2, s * 0.22);
  for (let k = 0; k < shown.length && k < g.x.length; k++) {
    const i = shown[k];
    const level = SCALE.level(data.shownSlope(i));
    ctx.fillStyle = SCALE.fill[level];
    const x = g.x[k];
    const y = g.y[k];
    ctx.fillRect(x + inset, y + inset, s - 2 * inset, s - 2 * inset);
    if (weak[level]) {
      edges.rect(x + inset + 0.5, y + inset + 0.5, s - 2 * inset - 1, s - 2 * inset - 1);
    }
    const state = data.stateOf(i);
    if (state !== UnitState.FREE) {
      const ink = SCALE.ink[level];
      const p = inks[ink] ?? (inks[ink] = new Path2D());
      p.rect(x + inset + 0.75, y + inset + 0.75, s - 2 * inset - 1.5, s - 2 * inset - 1.5);
      if (glyph && state === UnitState.LINEAR) {
        p.moveTo(x + m, y + s - m);
        p.lineTo(x + s - m, y + m);
      } else if (glyph) {
        p.moveTo(x + m, y + s - m - s * 0.12);
        p.lineTo(x + s / 2, y + s - m - s * 0.12);
        p.lineTo(x + s - m, y + m);
      } else if (state === UnitState.NONLINEAR) {
        p.rect(x + s / 2 - 0.5, y + s / 2 - 0.5, 1, 1);
      }
    }
  }
  ctx.strokeStyle = theme.muted;
  ctx.lineWidth = 1;
  ctx.stroke(edges);
  ctx.lineWidth = glyph ? Math.max(1.2, s / 10) : 1;
  for (const [ink, p] of Object.entries(inks)) {
    ctx.strokeStyle = ink;
    ctx.stroke(p);
  }
  if (selection.size) {
    const p = new Path2D();
    for (const i of selection) {
      const k = posOf[i];
      if (k >= 0) {
        p.rect(g.x[k] - 0.5, g.y[k] - 0.5, s + 1, s + 1);
      }
    }
    ctx.strokeStyle = theme.accent;
    ctx.lineWidth = 2;
    ctx.stroke(p);
  }
  if (data.pending.size) {
    ctx.setLineDash([2, 2]);
    ctx.strokeStyle = theme.text;
    ctx.lineWidth = 1;
    for (const i of data.pending.keys()) {
      const k = posOf[i];
      if (k >= 0) {
        ctx.strokeRect(g.x[k] - 1, g.y[k] - 1, s + 2, s + 2);
      }
    }
    ctx.setLineDash([]);
  }
  const hk = hover >= 0 ? posOf[hover] : -1;
  if (hk >= 0) {
    ctx.strokeStyle = theme.text;
    ctx.lineWidth = 1.5;
    ctx.strokeRect(g.x[hk] - 1, g.y[hk] - 1, s + 2, s + 2);
  }
}

/** Overview mode: one strip per layer, each pixel row the mean slope of its units; forced units ticked. */
export function paintOverview(ctx: CanvasRenderingContext2D, o: Overview, data: UnitData, theme: Theme,
  hoverLayer: number): void {
  bandsAndSkips(ctx, theme, o.blockBands, o.skips);
  const weak = weakLevels(ctx, theme.bg);
  const w = o.strip - 2;
  data.layers.forEach((layer, li) => {
    const x = o.left[li] + 1;
    const top = o.top[li];
    const h = o.bottom[li] - top;
    const rows = Math.max(1, Math.floor(h));
    const per = layer.units / rows;
    for (let r = 0; r < rows; r++) {
      const a = layer.offset + Math.floor(r * per);
      const b = Math.max(a + 1, layer.offset + Math.floor((r + 1) * per));
      let sum = 0;
      let forced = false;
      for (let i = a; i < b; i++) {
        sum += data.shownSlope(i);
        forced = forced || data.stateOf(i) !== UnitState.FREE;
      }
      const level = SCALE.level(sum / (b - a));
      ctx.fillStyle = SCALE.fill[level];
      ctx.fillRect(x, top + (r * h) / rows, w, h / rows + 0.5);
      if (forced) {
        ctx.fillStyle = SCALE.ink[level];
        ctx.fillRect(x + w - 3, top + (r * h) / rows, 3, Math.max(1, h / rows));
      }
    }
    if (weak[SCALE.level(0)] || weak[SCALE.level(1)]) {
      ctx.strokeStyle = theme.muted;
      ctx.lineWidth = 1;
      ctx.strokeRect(x - 0.5, top - 0.5, w + 1, h + 1);
    }
    if (li === hoverLayer) {
      ctx.strokeStyle = theme.text;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(x - 1, top - 1, w + 2, h + 2);
    }
  });
  // Every layer labelled, slanted under its strip.
  ctx.fillStyle = theme.muted;
  ctx.font = `${o.labelSize}px ${theme.font}`;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  data.layers.forEach((layer, li) => {
    ctx.save();
    ctx.translate(o.left[li] + o.strip / 2, o.labelTop);
    ctx.rotate(-Math.PI / 3);
    ctx.fillText(layer.name, 0, 0);
    ctx.restore();
  });
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The units mode's picture as SVG: a square per unit in its colour, forced units outlined, layer labels. */
export function unitsSvg(g: Geometry, shown: number[], data: UnitData, labels: Label[], theme: Theme): string {
  const parts: string[] = [];
  const s = g.cell;
  for (let k = 0; k < shown.length && k < g.x.length; k++) {
    const i = shown[k];
    const level = SCALE.level(data.shownSlope(i));
    const ring = data.stateOf(i) !== UnitState.FREE ? ` stroke="${SCALE.ink[level]}" stroke-width="1.5"` : '';
    parts.push(`<rect x="${g.x[k] + g.inset}" y="${g.y[k] + g.inset}" width="${s - 2 * g.inset}" ` +
      `height="${s - 2 * g.inset}" fill="${SCALE.fill[level]}"${ring}><title>${esc(data.labelOf(i))}</title></rect>`);
  }
  for (const l of labels) {
    parts.push(`<text x="${l.x}" y="${g.labelTop + LABEL_PX - 1}" font-size="${LABEL_PX}" text-anchor="middle" fill="${theme.muted}" ` +
      `font-family="sans-serif">${esc(l.text)}</text>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${g.width}" height="${g.height}" ` +
    `viewBox="0 0 ${g.width} ${g.height}">${parts.join('')}</svg>`;
}

/** The overview's picture as SVG: one rect per layer strip in its mean colour, and the labels. */
export function overviewSvg(o: Overview, data: UnitData, theme: Theme): string {
  const parts: string[] = [];
  data.layers.forEach((layer, li) => {
    let sum = 0;
    for (let i = layer.offset; i < layer.offset + layer.units; i++) {
      sum += data.shownSlope(i);
    }
    const fill = SCALE.fill[SCALE.level(sum / Math.max(1, layer.units))];
    const c = data.layerCounts(li);
    parts.push(`<rect x="${o.left[li] + 1}" y="${o.top[li]}" width="${o.strip - 2}" ` +
      `height="${o.bottom[li] - o.top[li]}" fill="${fill}"><title>${esc(layer.name)}: ${c.nonlinear} of ` +
      `${layer.units} units nonlinear</title></rect>`);
    const x = o.left[li] + o.strip / 2;
    parts.push(`<text x="${x}" y="${o.labelTop}" font-size="${o.labelSize}" text-anchor="end" fill="${theme.muted}" ` +
      `font-family="sans-serif" transform="rotate(-60 ${x} ${o.labelTop})">${esc(layer.name)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${o.width}" height="${o.height}" ` +
    `viewBox="0 0 ${o.width} ${o.height}">${parts.join('')}</svg>`;
}
