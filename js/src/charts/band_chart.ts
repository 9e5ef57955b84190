/**
 * Lines with a band around each (a spread or an interval), faded dots for the runs behind a line, and bold dots for
 * points that arrive live; a linear or symmetric-log x axis (dense at small counts, like matplotlib's symlog), a
 * reference line at y = 0 and a marked x. Axes are padded so that no dot is cut at an edge.
 */

import { parseColor } from '../colormap';
import { Margins, TICK, drawAxes, plotBox } from './axes';
import { Chart, LegendItem } from './chart';
import { Painter } from './painter';
import { Scale, formatNumber, linearScale, niceDomain } from './scale';

export type Values = (number | null)[];

export interface BandLine {
  label: string;
  /** Palette series key. */
  color: string;
  x: Values;
  y: Values;
  lo?: Values;
  hi?: Values;
  /** The runs behind the line (faded dots). */
  dotsX?: Values;
  dotsY?: Values;
  /** A dot on each point of the line (default true). */
  marks?: boolean;
}

export interface LivePoints {
  label: string;
  color: string;
  x: Values;
  y: Values;
}

export interface BandData {
  lines: BandLine[];
  points?: LivePoints[];
  /** Legend text of the bands (one entry for all of them). */
  bandLabel?: string;
  /** A line under the chart (what the faded dots are, where the numbers come from). */
  note?: string;
  /** A horizontal reference line (0 for a difference). */
  zero?: boolean;
  /** A vertical marker: an x with its label. */
  mark?: { x: number; label: string } | null;
  /** Drawn instead of the axes when there is nothing to draw (why). */
  message?: string;
}

export interface BandChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  /** Symmetric log x axis, linear up to this value (none: a linear axis). */
  symlog?: number;
}

const MARGIN: Margins = { left: 62, right: 16, top: 12, bottom: 44 };
/** Pixels between the plot's frame and the outermost data (a dot at the edge stays whole). */
const INSET = 9;

const num = (v: number | null | undefined) => (v === null || v === undefined ? NaN : v);

/** `color` with an alpha, for dots drawn over each other. */
export function withAlpha(color: string, alpha: number): string {
  const [r, g, b] = parseColor(color);
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** x -> sign(x) log10(1 + |x| / c): linear near 0, logarithmic beyond c. */
export function symlog(c: number): { to: (v: number) => number; from: (t: number) => number } {
  return {
    to: v => Math.sign(v) * Math.log10(1 + Math.abs(v) / c),
    from: t => Math.sign(t) * c * (Math.pow(10, Math.abs(t)) - 1)
  };
}

/** Round ticks (0, 1, 2, 5, 10, 20, 50, ...) over [lo, hi] on a symlog axis, at least `gap` pixels apart. */
export function symlogTicks(lo: number, hi: number, px: (v: number) => number, gap: number): number[] {
  const cands = [0];
  for (let k = 0; k < 9; k++) {
    for (const m of [1, 2, 5]) {
      cands.push(m * Math.pow(10, k));
    }
  }
  const out: number[] = [];
  for (const v of cands.filter(c => c >= lo && c <= hi)) {
    if (!out.length || Math.abs(px(v) - px(out[out.length - 1])) >= gap) {
      out.push(v);
    }
  }
  return out;
}

export class BandChart extends Chart {
  private data: BandData = { lines: [] };

  constructor(private readonly spec: BandChartSpec, height = 300) {
    super(spec.id, spec.title, height);
  }

  setData(data: BandData): void {
    this.data = data;
    this.invalidate();
  }

  /** The finite range of the columns `pick` gives for each line and each set of live points. */
  private extent(line: (l: BandLine) => Values[], points: (p: LivePoints) => Values[]): [number, number] {
    let lo = Infinity;
    let hi = -Infinity;
    const cols = [...this.data.lines.flatMap(line), ...(this.data.points ?? []).flatMap(points)];
    for (const col of cols) {
      for (const v of col) {
        const x = num(v);
        if (Number.isFinite(x)) {
          lo = Math.min(lo, x);
          hi = Math.max(hi, x);
        }
      }
    }
    return [lo, hi];
  }

  /** The x scale: round ticks over everything drawn (and 0), inset from the frame. */
  private xScale(x0: number, x1: number): Scale {
    const [dlo, dhi] = this.extent(l => [l.x, l.dotsX ?? []], q => [q.x]);
    const lo = Math.min(0, Number.isFinite(dlo) ? dlo : 0);
    let hi = Number.isFinite(dhi) ? dhi : 1;
    if (this.data.mark && Number.isFinite(this.data.mark.x)) {
      hi = Math.max(hi, this.data.mark.x);
    }
    const a = x0 + INSET;
    const b = x1 - INSET;
    if (this.spec.symlog) {
      const f = symlog(this.spec.symlog);
      hi = Math.max(hi, lo + 1);
      const t0 = f.to(lo);
      const t1 = f.to(hi) * 1.02;
      const map = (v: number) => a + ((f.to(v) - t0) / (t1 - t0 || 1)) * (b - a);
      return { map, ticks: symlogTicks(lo, f.from(t1), map, 44), format: v => formatNumber(v, 1), log: true };
    }
    const d = niceDomain(lo, hi, Math.max(2, Math.floor((b - a) / 90)));
    return linearScale(d.lo, d.hi, a, b, Math.max(2, Math.floor((b - a) / 90)), true);
  }

  private yScale(y0: number, y1: number): Scale {
    let [lo, hi] = this.extent(l => [l.y, l.lo ?? [], l.hi ?? [], l.dotsY ?? []], q => [q.y]);
    if (this.data.zero) {
      lo = Math.min(lo, 0);
      hi = Math.max(hi, 0);
    }
    if (!Number.isFinite(lo)) {
      lo = 0;
      hi = 1;
    }
    const pad = (hi - lo) * 0.04 || 0.05;
    const count = Math.max(3, Math.floor((y0 - y1) / 48));
    const d = niceDomain(lo - pad, hi + pad, count);
    return linearScale(d.lo, d.hi, y0 - INSET, y1 + INSET, count, true);
  }

  protected draw(p: Painter): void {
    const pal = this.palette;
    p.font = this.font;
    p.clear(pal.bg);
    const d = this.data;
    const box = plotBox(p, MARGIN);
    const { x0, x1, y0, y1 } = box;
    const color = (key: string) => pal.series[key] ?? pal.fg;
    if (d.message) {
      this.drawMessage(p, d.message);
      this.setLegend([]);
      this.setNote('');
      this.el.dataset.drawn = '0';
      return;
    }
    const xs = this.xScale(x0, x1);
    const ys = this.yScale(y0, y1);
    drawAxes(p, box, xs, ys, { x: this.spec.xLabel + (this.spec.symlog ? ` (log beyond ${this.spec.symlog})` : ''),
      y: this.spec.yLabel, yAt: 14 }, pal);
    if (d.zero) {
      p.segments([x0, ys.map(0), x1, ys.map(0)], { color: pal.axis, width: 1.5, dash: [6, 4] });
    }
    if (d.mark && Number.isFinite(d.mark.x)) {
      const mx = xs.map(d.mark.x);
      p.segments([mx, y0, mx, y1], { color: pal.muted, width: 1, dash: [3, 3] });
      p.text(mx + 4, y1 + 2, d.mark.label, { color: pal.muted, size: TICK, align: 'left', baseline: 'top' });
    }
    // Bands, then the runs' dots, then the lines, then the live points on top.
    const px = (vals: Values) => vals.map(v => (Number.isFinite(num(v)) ? xs.map(num(v)) : NaN));
    const py = (vals: Values) => vals.map(v => (Number.isFinite(num(v)) ? ys.map(num(v)) : NaN));
    for (const l of d.lines) {
      if (l.lo && l.hi) {
        p.area(px(l.x), py(l.lo), py(l.hi), color(l.color), pal.name === 'dark' ? 0.28 : 0.2);
      }
    }
    for (const l of d.lines) {
      if (l.dotsX && l.dotsY) {
        const dx = px(l.dotsX);
        const dy = py(l.dotsY);
        const ok = dx.map((v, i) => Number.isFinite(v) && Number.isFinite(dy[i]));
        p.dots(dx.filter((_, i) => ok[i]), dy.filter((_, i) => ok[i]), 3, withAlpha(color(l.color), 0.5),
          withAlpha(color(l.color), 0.8));
      }
    }
    for (const l of d.lines) {
      p.polyline(px(l.x), py(l.y), { color: color(l.color), width: 2.5 });
      if (l.marks === false) {
        continue;
      }
      const lx = px(l.x);
      const ly = py(l.y);
      const ok = lx.map((v, i) => Number.isFinite(v) && Number.isFinite(ly[i]));
      p.dots(lx.filter((_, i) => ok[i]), ly.filter((_, i) => ok[i]), 4, color(l.color), pal.bg);
    }
    let live = 0;
    for (const pts of d.points ?? []) {
      const dx = px(pts.x);
      const dy = py(pts.y);
      const ok = dx.map((v, i) => Number.isFinite(v) && Number.isFinite(dy[i]));
      const fx = dx.filter((_, i) => ok[i]);
      live += fx.length;
      p.dots(fx, dy.filter((_, i) => ok[i]), 6, color(pts.color), pal.fg);
    }
    this.el.dataset.drawn = String(d.lines.filter(l => l.x.some(v => Number.isFinite(num(v)))).length);
    this.el.dataset.live = String(live);
    const items: LegendItem[] = d.lines.map(l => ({ label: l.label, color: color(l.color) }));
    if (d.bandLabel && d.lines.some(l => l.lo)) {
      items.push({ label: d.bandLabel, color: pal.muted, box: true, faded: true });
    }
    for (const pts of d.points ?? []) {
      if (pts.x.length) {
        items.push({ label: pts.label, color: color(pts.color), box: true });
      }
    }
    this.setLegend(items);
    this.setNote(d.note ?? '');
  }

  private drawMessage(p: Painter, text: string): void {
    const pal = this.palette;
    const words = text.split(/\s+/);
    const lines: string[] = [];
    let cur = '';
    for (const w of words) {
      const next = cur ? `${cur} ${w}` : w;
      if (p.measure(next, 15) > p.width - 40 && cur) {
        lines.push(cur);
        cur = w;
      } else {
        cur = next;
      }
    }
    if (cur) {
      lines.push(cur);
    }
    const top = p.height / 2 - (lines.length * 22) / 2;
    lines.forEach((line, i) => p.text(p.width / 2, top + i * 22, line, { color: pal.fg, size: 15, align: 'center',
      baseline: 'top' }));
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    const header = ['series', 'kind', 'x', 'y', 'low', 'high'];
    const rows: (string | number | null)[][] = [];
    for (const l of this.data.lines) {
      l.x.forEach((x, i) => rows.push([l.label, 'line', x, l.y[i], l.lo?.[i] ?? null, l.hi?.[i] ?? null]));
      (l.dotsX ?? []).forEach((x, i) => rows.push([l.label, 'run', x, l.dotsY?.[i] ?? null, null, null]));
    }
    for (const pts of this.data.points ?? []) {
      pts.x.forEach((x, i) => rows.push([pts.label, 'live', x, pts.y[i], null, null]));
    }
    return { header, rows };
  }
}
