/**
 * The explorer's charts, on the shared chart frame (title, legend, PNG at 2x with title and legend, SVG, CSV):
 * cosine tables with a colour bar, the draggable 2-D view of the unit directions, the 3-D view, the convergence
 * curve and the relative loss against M.
 */

import { Margins, TICK, drawAxes, plotBox } from '../charts/axes';
import { Chart, LegendItem, el } from '../charts/chart';
import { Painter } from '../charts/painter';
import { linearScale, logScale } from '../charts/scale';
import { METHOD_SERIES, cosineColor, cosineText } from './colors';
import { Box, placeLabels } from './labels';

const WAIT = 'computing…';
/** The convergence and loss-vs-M charts' margins. */
const XY_MARGIN: Margins = { left: 62, right: 14, top: 10, bottom: 42 };

type Cells = (number | null)[][];

function fmtCos(v: number): string {
  const s = Math.abs(v) < 0.005 ? '0.00' : v.toFixed(2);
  return s.replace('-0.', '−.').replace('0.', '.').replace(/^1\.00$/, '1');
}

/**
 * ``p`` noting the smallest text size drawn on ``el`` (``data-min-text``): the look test reads it, since canvas text
 * is not in the DOM.
 */
function trackText(p: Painter, el: HTMLElement): Painter {
  let smallest = Infinity;
  const wrapped: Painter = Object.create(p);
  wrapped.text = (x, y, s, style) => {
    smallest = Math.min(smallest, style.size);
    el.dataset.minText = String(smallest);
    p.text(x, y, s, style);
  };
  return wrapped;
}

/** A line of text in the middle of the chart, on the background's colour (over grid lines and ticks). */
function waiting(p: Painter, text: string, color: string, bg = ''): void {
  if (bg) {
    const w = p.measure(text, 16) + 16;
    p.rect(p.width / 2 - w / 2, p.height / 2 - 14, w, 28, bg);
  }
  p.text(p.width / 2, p.height / 2, text, { color, size: 16, align: 'center', baseline: 'middle' });
}

/** A Gram matrix of cosines: cells coloured on the diverging scale, values printed where they fit, a colour bar. */
export class GramChart extends Chart {
  private cells: Cells | null = null;
  private empty = WAIT;

  constructor(id: string, title: string, height = 300) {
    super(id, title, height);
  }

  setTitle(title: string): void {
    if (this.titleEl.textContent !== title) {
      this.titleEl.textContent = title;
      this.canvas.setAttribute('aria-label', title);
      this.toolbar.setAttribute('aria-label', `${title}: export`);
      this.toolbar.querySelectorAll('button').forEach(b => b.setAttribute('aria-label',
        `${title}: save ${b.textContent ?? ''}`));
    }
  }

  /** `cells` null: nothing to draw, `empty` says why. */
  setData(cells: Cells | null, empty = WAIT): void {
    this.cells = cells;
    this.empty = empty;
    this.el.dataset.size = String(cells ? cells.length : 0);
    this.invalidate();
  }

  protected draw(painter: Painter): void {
    const p = trackText(painter, this.el);
    const pal = this.palette;
    p.clear(pal.bg);
    const bar = 16;
    const right = 12 + bar + 6 + 36;
    const side = Math.max(40, Math.min(p.width - right - 8, p.height - 16));
    const x0 = Math.max(4, (p.width - right - side) / 2);
    const y0 = 8;
    const cells = this.cells;
    if (cells && cells.length) {
      const M = cells.length;
      const c = side / M;
      const sample = fmtCos(-0.33);
      const fits = p.measure(sample, TICK) + 3 <= c && TICK + 4 <= c;
      this.el.dataset.labels = fits ? 'shown' : 'hidden';
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < M; j++) {
          const v = cells[i][j] ?? NaN;
          const [l, t] = [Math.round(x0 + j * c), Math.round(y0 + i * c)]; // whole pixels: no seams between cells
          p.rect(l, t, Math.round(x0 + (j + 1) * c) - l, Math.round(y0 + (i + 1) * c) - t,
            Number.isFinite(v) ? cosineColor(v) : pal.grid);
          if (fits && Number.isFinite(v)) {
            p.text(x0 + (j + 0.5) * c, y0 + (i + 0.5) * c, fmtCos(v), { color: cosineText(v), size: TICK,
              align: 'center', baseline: 'middle' });
          }
        }
      }
      p.strokeRect(x0, y0, side, side, { color: pal.axis, width: 1 });
    } else {
      p.strokeRect(x0, y0, side, side, { color: pal.grid, width: 1 });
      const words = this.empty.split(' ');
      let line = '';
      const lines: string[] = [];
      for (const w of words) {
        const next = line ? `${line} ${w}` : w;
        if (p.measure(next, 15) > side - 16 && line) {
          lines.push(line);
          line = w;
        } else {
          line = next;
        }
      }
      lines.push(line);
      lines.forEach((l, k) => p.text(x0 + side / 2, y0 + side / 2 + (k - (lines.length - 1) / 2) * 20, l,
        { color: pal.fg, size: 15, align: 'center', baseline: 'middle' }));
    }
    // The colour bar: cosine from -1 (bottom) to 1 (top).
    const cx = x0 + side + 12;
    const n = 40;
    for (let k = 0; k < n; k++) {
      p.rect(cx, y0 + (k * side) / n, bar, side / n + 0.5, cosineColor(1 - (2 * (k + 0.5)) / n));
    }
    p.strokeRect(cx, y0, bar, side, { color: pal.axis, width: 1 });
    for (const t of [1, 0, -1]) {
      p.text(cx + bar + 4, y0 + ((1 - t) / 2) * side, t === -1 ? '−1' : String(t), { color: pal.muted, size: TICK,
        baseline: t === 1 ? 'top' : t === -1 ? 'bottom' : 'middle' });
    }
    p.text(cx + bar + 26, y0 + side / 2, 'cosine', { color: pal.muted, size: TICK, align: 'center',
      baseline: 'middle', rotate: 90 });
    this.setLegend([]);
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    const rows: (string | number | null)[][] = [];
    (this.cells ?? []).forEach((row, i) => row.forEach((v, j) => rows.push([i, j, v])));
    return { header: ['unit', 'unit2', 'cosine'], rows };
  }
}

interface Frame {
  cx: number;
  cy: number;
  r: number;
}

function arrowHead(p: Painter, x0: number, y0: number, x1: number, y1: number, color: string): void {
  const len = Math.hypot(x1 - x0, y1 - y0);
  if (len < 2) {
    return;
  }
  const ux = (x1 - x0) / len;
  const uy = (y1 - y0) / len;
  const s = 10;
  p.polyline([x1 - s * ux + (s / 2) * uy, x1, x1 - s * ux - (s / 2) * uy],
    [y1 - s * uy - (s / 2) * ux, y1, y1 - s * uy + (s / 2) * ux], { color, width: 2.5 });
}

/** Unit labels beside their points, placed so that none overlaps another, a point or (given) the ring of radius `ring`
 * around `centre`; the boxes are kept for tests. */
function drawLabels(p: Painter, chart: HTMLElement, pts: { x: number; y: number }[], centre: { x: number; y: number },
  color: string, radius: number, avoid: Box[] = [], ring?: number): Box[] {
  const texts = pts.map((_, j) => String(j));
  const sizes = texts.map(t => ({ w: p.measure(t, TICK) + 2, h: TICK + 2 }));
  const boxes = placeLabels(pts, sizes, centre, radius, { x: 0, y: 0, w: p.width, h: p.height }, avoid, ring);
  boxes.forEach((b, j) => p.text(b.x + b.w / 2, b.y + b.h / 2, texts[j], { color, size: TICK, align: 'center',
    baseline: 'middle', weight: 'bold' }));
  chart.dataset.labels = JSON.stringify(boxes.map(b => [b.x, b.y, b.w, b.h].map(v => Math.round(v * 10) / 10)));
  return boxes;
}

/** The unit directions on their two leading principal axes (the unit circle), the target's linear direction as an
 * arrow; a unit can be dragged (pointer events) and `onDrop(unit, x, y)` asks for the loss there. */
export class DirectionsChart extends Chart {
  private xs: number[] = [];
  private ys: number[] = [];
  private arrow: number[] = [0, 0];
  private frame: Frame = { cx: 0, cy: 0, r: 1 };
  private dragging = -1;
  /** A unit moved here and not yet answered: drawn where it was dropped. */
  private held: { unit: number; x: number; y: number } | null = null;

  constructor(id: string, title: string, private readonly onDrop: (unit: number, x: number, y: number) => void,
    height = 320) {
    super(id, title, height);
    const c = this.canvas;
    c.style.touchAction = 'none';
    c.addEventListener('pointerdown', e => this.down(e));
    c.addEventListener('pointermove', e => this.move(e));
    c.addEventListener('pointerup', e => this.up(e));
    c.addEventListener('pointercancel', () => this.cancel());
    this.setNote('Drag a unit: its direction moves in this plane and the exact loss is recomputed there.');
  }

  setData(xs: number[], ys: number[], arrow: number[]): void {
    this.xs = xs.slice();
    this.ys = ys.slice();
    this.arrow = arrow.slice(0, 2);
    this.held = null;
    this.el.dataset.points = String(xs.length);
    this.invalidate();
  }

  /** The drop was refused: the unit goes back. */
  release(): void {
    this.held = null;
    this.invalidate();
  }

  /** Pixel position of unit `j` (tests drag from here). */
  pixel(j: number): [number, number] {
    const { cx, cy, r } = this.frame;
    const [x, y] = this.at(j);
    return [cx + x * r, cy - y * r];
  }

  private at(j: number): [number, number] {
    if (this.held && this.held.unit === j) {
      return [this.held.x, this.held.y];
    }
    return [this.xs[j], this.ys[j]];
  }

  private toData(e: PointerEvent): [number, number] {
    const rect = this.canvas.getBoundingClientRect();
    const { cx, cy, r } = this.frame;
    let x = (e.clientX - rect.left - cx) / r;
    let y = -(e.clientY - rect.top - cy) / r;
    const n = Math.hypot(x, y);
    if (n > 1) {
      x /= n;
      y /= n;
    }
    return [x, y];
  }

  private down(e: PointerEvent): void {
    const rect = this.canvas.getBoundingClientRect();
    const px = e.clientX - rect.left;
    const py = e.clientY - rect.top;
    let best = -1;
    let bestD = 14;
    for (let j = 0; j < this.xs.length; j++) {
      const [x, y] = this.pixel(j);
      const d = Math.hypot(x - px, y - py);
      if (d < bestD) {
        best = j;
        bestD = d;
      }
    }
    if (best >= 0) {
      this.dragging = best;
      this.canvas.setPointerCapture(e.pointerId);
      e.preventDefault();
    }
  }

  private move(e: PointerEvent): void {
    if (this.dragging < 0) {
      return;
    }
    const [x, y] = this.toData(e);
    this.held = { unit: this.dragging, x, y };
    this.invalidate();
  }

  private up(e: PointerEvent): void {
    if (this.dragging < 0) {
      return;
    }
    const unit = this.dragging;
    this.dragging = -1;
    const [x, y] = this.toData(e);
    this.held = { unit, x, y };
    this.invalidate();
    this.onDrop(unit, x, y);
  }

  private cancel(): void {
    this.dragging = -1;
    this.release();
  }

  protected draw(painter: Painter): void {
    const p = trackText(painter, this.el);
    const pal = this.palette;
    p.clear(pal.bg);
    const pad = 30;
    const r = Math.max(20, Math.min(p.width, p.height) / 2 - pad);
    const cx = p.width / 2;
    const cy = p.height / 2;
    this.frame = { cx, cy, r };
    this.el.dataset.frame = JSON.stringify([cx, cy, r]); // where the unit circle is (tests drag in data units)
    const circle = Array.from({ length: 97 }, (_, k) => (2 * Math.PI * k) / 96);
    p.polyline(circle.map(a => cx + r * Math.cos(a)), circle.map(a => cy + r * Math.sin(a)),
      { color: pal.axis, width: 1 });
    p.segments([cx - r, cy, cx + r, cy, cx, cy - r, cx, cy + r], { color: pal.grid, width: 1 });
    const unit = pal.series.train;
    const lin = pal.series.test;
    if (!this.xs.length) {
      waiting(p, WAIT, pal.fg);
    } else {
      const pts = this.xs.map((_, j) => {
        const [x, y] = this.pixel(j);
        return { x, y };
      });
      p.segments(pts.flatMap(q => [cx, cy, q.x, q.y]), { color: unit, width: 2 });
      p.dots(pts.map(q => q.x), pts.map(q => q.y), 7, unit, pal.bg);
      const [ax, ay] = this.arrow;
      if (Math.hypot(ax, ay) > 1e-6) {
        const x1 = cx + ax * r;
        const y1 = cy - ay * r;
        p.segments([cx, cy, x1, y1], { color: lin, width: 2.5 });
        arrowHead(p, cx, cy, x1, y1, lin);
      }
      drawLabels(p, this.el, pts, { x: cx, y: cy }, pal.fg, 8, [], r);  // clear of the unit circle's line
    }
    const items: LegendItem[] = [{ label: 'unit directions (PC1, PC2)', color: unit },
      { label: 'linear part of the target', color: lin }];
    this.setLegend(items);
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    return { header: ['unit', 'pc1', 'pc2'], rows: this.xs.map((x, j) => [j, x, this.ys[j]]) };
  }
}

/** The 3-D camera (degrees): R = R_x(elevation) R_y(azimuth), as compression_core.rotation_3d. */
export function rotation3d(azimuth: number, elevation: number): number[][] {
  const a = (azimuth * Math.PI) / 180;
  const e = (elevation * Math.PI) / 180;
  const ry = [[Math.cos(a), 0, Math.sin(a)], [0, 1, 0], [-Math.sin(a), 0, Math.cos(a)]];
  const rx = [[1, 0, 0], [0, Math.cos(e), -Math.sin(e)], [0, Math.sin(e), Math.cos(e)]];
  return rx.map(row => [0, 1, 2].map(j => row[0] * ry[0][j] + row[1] * ry[1][j] + row[2] * ry[2][j]));
}

/** The unit directions on three principal axes, seen orthographically from an azimuth and an elevation (sliders
 * under the chart), with the simplex's edges, the axes and the linear direction; nearer points are larger. */
export class View3DChart extends Chart {
  private coords: number[][] = [];
  private arrow: number[] = [0, 0, 0];
  private azimuth = 30;
  private elevation = 20;
  readonly azimuthInput: HTMLInputElement;
  readonly elevationInput: HTMLInputElement;

  constructor(id: string, title: string, height = 320) {
    super(id, title, height);
    const controls = el('div', { class: 'ne-cx-angles' });
    const slider = (label: string, min: number, max: number, value: number, set: (v: number) => void) => {
      const id3 = `ne-${label.toLowerCase()}-${Math.random().toString(36).slice(2, 7)}`;
      const input = el('input', { type: 'range', id: id3, min: String(min), max: String(max), step: '1',
        value: String(value), class: `ne-cx-${label.toLowerCase()}` });
      const out = el('output', { class: 'ne-value', for: id3 }, `${value}°`);
      input.addEventListener('input', () => {
        set(Number(input.value));
        out.textContent = `${input.value}°`;
        this.invalidate();
      });
      const wrap = el('div', { class: 'ne-field ne-slider-field' });
      wrap.append(el('label', { for: id3 }, label), input, out);
      controls.append(wrap);
      return input;
    };
    this.azimuthInput = slider('Azimuth', -180, 180, this.azimuth, v => (this.azimuth = v));
    this.elevationInput = slider('Elevation', -90, 90, this.elevation, v => (this.elevation = v));
    this.el.append(controls);
  }

  setData(coords: number[][], arrow: number[]): void {
    this.coords = coords.map(c => c.slice(0, 3));
    this.arrow = arrow.slice(0, 3);
    this.el.dataset.points = String(coords.length);
    this.invalidate();
  }

  protected draw(painter: Painter): void {
    const p = trackText(painter, this.el);
    const pal = this.palette;
    p.clear(pal.bg);
    const R = rotation3d(this.azimuth, this.elevation);
    const project = (v: number[]) => R.map(row => row[0] * v[0] + row[1] * v[1] + row[2] * v[2]);
    const r = Math.max(20, Math.min(p.width, p.height) / 2 - 34);
    const cx = p.width / 2;
    const cy = p.height / 2;
    const sx = (v: number[]) => cx + v[0] * r;
    const sy = (v: number[]) => cy - v[1] * r;
    // Axes PC1..PC3, dashed, labelled at their ends (the unit labels keep clear of these).
    const axisBoxes: Box[] = [];
    ['PC1', 'PC2', 'PC3'].forEach((label, k) => {
      const e = [0, 0, 0];
      e[k] = 1;
      const q = project(e);
      p.polyline([cx, sx(q)], [cy, sy(q)], { color: pal.axis, width: 1, dash: [4, 4] });
      const [lx, ly] = [cx + q[0] * (r + 14), cy - q[1] * (r + 14)];
      const w = p.measure(label, TICK);
      axisBoxes.push({ x: lx - w / 2, y: ly - TICK / 2, w, h: TICK });
      p.text(lx, ly, label, { color: pal.muted, size: TICK, align: 'center', baseline: 'middle' });
    });
    const unit = pal.series.train;
    if (!this.coords.length) {
      waiting(p, WAIT, pal.fg);
    } else {
      const q = this.coords.map(project);
      const edges: number[] = [];
      for (let i = 0; i < q.length; i++) {
        for (let j = i + 1; j < q.length; j++) {
          edges.push(sx(q[i]), sy(q[i]), sx(q[j]), sy(q[j]));
        }
      }
      if (q.length <= 16) {
        p.segments(edges, { color: unit, width: 1.2, alpha: 0.55 });
      }
      const a = project(this.arrow);
      if (Math.hypot(a[0], a[1]) > 1e-6) {
        p.segments([cx, cy, sx(a), sy(a)], { color: pal.series.test, width: 2.5 });
        arrowHead(p, cx, cy, sx(a), sy(a), pal.series.test);
      }
      const order = q.map((_, j) => j).sort((i, j) => q[i][2] - q[j][2]); // far first
      for (const j of order) {
        p.dots([sx(q[j])], [sy(q[j])], 6 + 3 * q[j][2], unit, pal.bg);
      }
      drawLabels(p, this.el, q.map(v => ({ x: sx(v), y: sy(v) })), { x: cx, y: cy }, pal.fg, 9, axisBoxes);
    }
    this.setLegend([{ label: 'unit directions (PC1-PC3), simplex edges', color: unit },
      { label: 'linear part of the target', color: pal.series.test }]);
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    return { header: ['unit', 'pc1', 'pc2', 'pc3'], rows: this.coords.map((c, j) => [j, ...c]) };
  }
}

/** Relative loss against the optimizer's iterations (log axis), with a note while it runs. */
export class ConvergenceChart extends Chart {
  private its: number[] = [];
  private losses: number[] = [];
  private method = 'exact';

  constructor(id: string, title: string, height = 260) {
    super(id, title, height);
  }

  setData(its: number[], losses: number[], method: string): void {
    this.its = its;
    this.losses = losses;
    this.method = method;
    this.el.dataset.points = String(its.length);
    this.invalidate();
  }

  protected draw(painter: Painter): void {
    const p = trackText(painter, this.el);
    const pal = this.palette;
    p.clear(pal.bg);
    const box = plotBox(p, XY_MARGIN);
    const { x0, x1, y0, y1 } = box;
    const finite = this.losses.filter(v => v > 0 && Number.isFinite(v));
    const xs = linearScale(0, Math.max(1, ...this.its), x0, x1, Math.max(2, Math.floor((x1 - x0) / 80)));
    const ys = logScale(finite.length ? Math.min(...finite) : 1e-3, finite.length ? Math.max(...finite) : 1, y0, y1);
    drawAxes(p, box, xs, ys, { x: 'iteration', y: 'relative loss (log)' }, pal);
    const color = pal.series[METHOD_SERIES[this.method] ?? 'train'] ?? pal.fg;
    if (this.its.length) {
      p.polyline(this.its.map(xs.map), this.losses.map(v => ys.map(v)), { color, width: 2 });
      const last = this.its.length - 1;
      p.dots([xs.map(this.its[last])], [ys.map(this.losses[last])], 4, color, pal.bg);
    } else {
      waiting(p, WAIT, pal.fg);
    }
    this.setLegend([{ label: this.method, color }]);
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    return { header: ['iteration', 'relative_loss'], rows: this.its.map((it, k) => [it, this.losses[k]]) };
  }
}

/** Relative loss against M, one line per method, filling in point by point. */
export class SweepChart extends Chart {
  private methods: string[] = [];
  private Ms: number[] = [];
  private losses: Record<string, Record<string, number | null>> = {};
  private hint = '';

  constructor(id: string, title: string, height = 260) {
    super(id, title, height);
  }

  setData(methods: string[], Ms: number[], losses: Record<string, Record<string, number | null>>, hint: string): void {
    this.methods = methods;
    this.Ms = Ms;
    this.losses = losses;
    this.hint = hint;
    const points = methods.reduce((n, m) => n + Object.keys(losses[m] ?? {}).length, 0);
    this.el.dataset.points = String(points);
    this.invalidate();
  }

  protected draw(painter: Painter): void {
    const p = trackText(painter, this.el);
    const pal = this.palette;
    p.clear(pal.bg);
    const box = plotBox(p, XY_MARGIN);
    const { x0, x1, y0, y1 } = box;
    const values = this.methods.flatMap(k => Object.values(this.losses[k] ?? {}))
      .filter((v): v is number => typeof v === 'number' && v > 0);
    const mMax = Math.max(8, ...this.Ms);
    const xs = linearScale(1, mMax, x0 + 8, x1 - 8, Math.min(mMax, Math.max(2, Math.floor((x1 - x0) / 40))), true);
    const ys = logScale(values.length ? Math.min(...values) : 1e-2, values.length ? Math.max(...values) : 1, y0, y1);
    drawAxes(p, box, xs, ys, { x: 'M (compressed units)', y: 'relative loss (log)' }, pal);
    const items: LegendItem[] = [];
    for (const method of this.methods) {
      const row = this.losses[method] ?? {};
      const Ms = Object.keys(row).map(Number).sort((a, b) => a - b);
      const color = pal.series[METHOD_SERIES[method] ?? 'units'] ?? pal.fg;
      items.push({ label: method, color });
      if (!Ms.length) {
        continue;
      }
      const px = Ms.map(xs.map);
      const py = Ms.map(k => ys.map(row[String(k)] ?? NaN));
      p.polyline(px, py, { color, width: 2 });
      p.dots(px, py, 4, color, pal.bg);
    }
    if (!values.length) {
      waiting(p, this.hint, pal.fg, pal.bg);
    }
    this.setLegend(items);
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    const rows: (string | number | null)[][] = [];
    for (const method of this.methods) {
      for (const [M, v] of Object.entries(this.losses[method] ?? {})) {
        rows.push([method, Number(M), v]);
      }
    }
    return { header: ['method', 'M', 'relative_loss'], rows };
  }
}
