/**
 * The core network now: per layer (named, in forward order), its width and how many of its units are still
 * nonlinear (the same purple as nonlinear units in the network view).
 */

import { viridis } from '../colormap';
import { Chart } from './chart';
import { ChartData } from './data';
import { Painter } from './painter';
import { linearScale } from './scale';

const SCALE = viridis();
const TICK = 14;

export class CoreBars extends Chart {
  private data: ChartData | null = null;

  constructor(id: string, title: string, height = 220) {
    super(id, title, height);
  }

  setData(data: ChartData): void {
    this.data = data;
    this.invalidate();
  }

  private latest(): number[] {
    const rows = this.data?.current.nonlinear ?? [];
    return rows.length ? rows[rows.length - 1] : [];
  }

  protected draw(p: Painter): void {
    const pal = this.palette;
    p.font = this.font;
    p.clear(pal.bg);
    const names = this.data?.layerNames ?? [];
    const units = this.data?.units ?? [];
    const nl = this.latest();
    const L = Math.max(1, names.length);
    const longest = Math.max(0, ...names.map(n => p.measure(n, TICK)));
    const x0 = 52;
    const x1 = p.width - 12;
    const slot = (x1 - x0) / L;
    const rotate = longest > slot - 4;
    const bottom = rotate ? Math.min(90, longest * 0.72 + 16) : 26;
    const y0 = p.height - bottom;
    const y1 = 10;
    const ys = linearScale(0, Math.max(1, ...units), y0, y1, 4);
    const grid: number[] = [];
    for (const t of ys.ticks) {
      grid.push(x0, ys.map(t), x1, ys.map(t));
      p.text(x0 - 6, ys.map(t), ys.format(t), { color: pal.muted, size: TICK, align: 'right', baseline: 'middle' });
    }
    p.segments(grid, { color: pal.grid, width: 1 });
    p.text(13, (y0 + y1) / 2, 'units', { color: pal.muted, size: TICK, align: 'center', baseline: 'middle',
      rotate: -90 });
    names.forEach((name, l) => {
      const cx = x0 + (l + 0.5) * slot;
      const w = Math.max(2, slot * 0.7);
      const top = ys.map(units[l] ?? 0);
      p.rect(cx - w / 2, top, w, y0 - top, pal.series.units);
      const n = nl[l] ?? 0;
      const ntop = ys.map(n);
      p.rect(cx - w / 2 + 2, ntop, Math.max(1, w - 4), y0 - ntop, SCALE.fill[0]);
      const edge = this.edgeFor(SCALE.fill[0]);
      if (edge && n > 0) {
        p.strokeRect(cx - w / 2 + 2.5, ntop + 0.5, Math.max(1, w - 5), y0 - ntop - 0.5, { color: edge, width: 1 });
      }
      if (rotate) {
        p.text(cx, y0 + 6, name, { color: pal.muted, size: TICK, align: 'right', baseline: 'middle', rotate: -45 });
      } else {
        p.text(cx, y0 + 5, name, { color: pal.muted, size: TICK, align: 'center', baseline: 'top' });
      }
    });
    p.segments([x0, y0, x1, y0], { color: pal.axis, width: 1 });
    this.setLegend([
      { label: 'units in the layer', color: pal.series.units, box: true },
      { label: 'nonlinear units (the core network)', color: SCALE.fill[0], box: true }
    ]);
    const total = nl.reduce((a, b) => a + b, 0);
    const all = units.reduce((a, b) => a + b, 0);
    const layers = nl.filter(v => v > 0).length;
    this.setNote(this.data && nl.length ? `${total} of ${all} units nonlinear in ${layers} of ${names.length} layers ` +
      `(nonlinear: 1 − α > ${this.data.tol}).` : 'No evaluation yet.');
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    const names = this.data?.layerNames ?? [];
    const nl = this.latest();
    return { header: ['layer', 'units', 'nonlinear_units'],
      rows: names.map((n, l) => [n, this.data?.units[l] ?? null, nl[l] ?? null]) };
  }
}
