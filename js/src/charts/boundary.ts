/**
 * What the model predicts over the plane, for 2-D inputs (as TensorFlow Playground shows it): each cell of a grid
 * tinted by its predicted class, the test points on top in their true class's colour. Colours: Okabe-Ito, told
 * apart with colour-vision deficiencies.
 */

import { Chart } from './chart';
import { Painter } from './painter';
import { linearScale } from './scale';

export const CLASS_COLORS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000'];
const TICK = 14;

export interface BoundaryData {
  /** Predicted class per grid cell, row-major from the top row (largest y) down. */
  grid: Uint8Array;
  n: number;
  x: [number, number];
  y: [number, number];
  classes: number;
  step: number;
  /** Test points: x, y interleaved, and their labels. */
  points: Float32Array;
  labels: Uint8Array;
}

function tint(hex: string, bg: string, amount: number): string {
  const p = (h: string) => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16));
  const a = p(hex);
  const b = p(bg.length === 7 ? bg : '#ffffff');
  const c = a.map((v, i) => Math.round(v * amount + b[i] * (1 - amount)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export class BoundaryChart extends Chart {
  private data: BoundaryData | null = null;

  constructor(id: string, title: string, height = 300) {
    super(id, title, height);
  }

  setData(data: BoundaryData | null): void {
    this.data = data;
    this.invalidate();
  }

  protected draw(p: Painter): void {
    const pal = this.palette;
    p.font = this.font;
    p.clear(pal.bg);
    const d = this.data;
    const size = Math.max(60, Math.min(p.width - 70, p.height - 42));
    const x0 = 52;
    const y1 = 8;
    const x1 = x0 + size;
    const y0 = y1 + size;
    if (!d || !d.n) {
      p.text(x0 + size / 2, y1 + size / 2, 'no prediction yet', { color: pal.muted, size: 14, align: 'center',
        baseline: 'middle' });
      this.setLegend([]);
      return;
    }
    const xs = linearScale(d.x[0], d.x[1], x0, x1, 4, true);
    const ys = linearScale(d.y[0], d.y[1], y0, y1, 4, true);
    const cell = size / d.n;
    const tints = CLASS_COLORS.map(c => tint(c, pal.bg, pal.name === 'dark' ? 0.3 : 0.22));
    for (let r = 0; r < d.n; r++) {
      for (let c = 0; c < d.n; c++) {
        p.rect(x0 + c * cell, y1 + r * cell, cell + 0.5, cell + 0.5, tints[d.grid[r * d.n + c] % tints.length]);
      }
    }
    for (let k = 0; k < d.classes; k++) {
      const px: number[] = [];
      const py: number[] = [];
      for (let i = 0; i < d.labels.length; i++) {
        if (d.labels[i] === k) {
          px.push(xs.map(d.points[2 * i]));
          py.push(ys.map(d.points[2 * i + 1]));
        }
      }
      p.dots(px, py, 2.8, CLASS_COLORS[k % CLASS_COLORS.length], pal.fg);
    }
    p.strokeRect(x0, y1, size, size, { color: pal.axis, width: 1 });
    for (const t of xs.ticks) {
      p.text(xs.map(t), y0 + 5, xs.format(t), { color: pal.muted, size: TICK, align: 'center', baseline: 'top' });
    }
    for (const t of ys.ticks) {
      p.text(x0 - 6, ys.map(t), ys.format(t), { color: pal.muted, size: TICK, align: 'right', baseline: 'middle' });
    }
    this.setLegend(Array.from({ length: d.classes }, (_, k) => ({ label: `class ${k}`, color: CLASS_COLORS[k] })));
    this.setNote(`Background: the class the model predicts (step ${d.step}); dots: test points.`);
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    const d = this.data;
    const rows: (string | number | null)[][] = [];
    if (d) {
      for (let r = 0; r < d.n; r++) {
        for (let c = 0; c < d.n; c++) {
          const x = d.x[0] + ((c + 0.5) / d.n) * (d.x[1] - d.x[0]);
          const y = d.y[1] - ((r + 0.5) / d.n) * (d.y[1] - d.y[0]);
          rows.push([x, y, d.grid[r * d.n + c]]);
        }
      }
    }
    return { header: ['x', 'y', 'predicted_class'], rows };
  }
}
