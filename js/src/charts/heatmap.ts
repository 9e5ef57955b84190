/**
 * How linear each layer is over training: one row per layer (named), one column per evaluation, coloured by the
 * fraction of the layer's units that are linear, on the same viridis scale as the network view (purple: all
 * nonlinear, yellow: all linear), with its colour bar and the nonlinearity threshold.
 */

import { viridis } from '../colormap';
import { Chart } from './chart';
import { ChartData, num } from './data';
import { Painter } from './painter';
import { linearScale, stepsEnd } from './scale';

const SCALE = viridis();
const TICK = 14;

function shortName(name: string, room: number, p: Painter): string {
  if (p.measure(name, TICK) <= room) {
    return name;
  }
  const parts = name.split('.');
  for (let k = 1; k < parts.length; k++) {
    const s = '…' + parts.slice(k).join('.');
    if (p.measure(s, TICK) <= room) {
      return s;
    }
  }
  let s = name;
  while (s.length > 2 && p.measure('…' + s, TICK) > room) {
    s = s.slice(1);
  }
  return '…' + s;
}

export class Heatmap extends Chart {
  private data: ChartData | null = null;

  constructor(id: string, title: string, height = 220) {
    super(id, title, height);
  }

  setData(data: ChartData): void {
    this.data = data;
    this.invalidate();
  }

  protected draw(p: Painter): void {
    const pal = this.palette;
    p.font = this.font;
    p.clear(pal.bg);
    const data = this.data;
    const names = data?.layerNames ?? [];
    const L = Math.max(1, names.length);
    const left = Math.min(130, Math.max(60, Math.max(0, ...names.map(n => p.measure(n, TICK))) + 12));
    const bar = 16;
    const right = 14 + bar + 8 + 34;
    const x0 = left;
    const x1 = p.width - right;
    const y0 = p.height - 42;
    const y1 = 10;
    const steps = (data?.current.evals.step ?? []).map(num);
    const xmax = stepsEnd(data);
    this.el.dataset.xEnd = String(xmax);
    const xs = linearScale(0, xmax, x0, x1, Math.max(2, Math.floor((x1 - x0) / 90)), true);
    const rowH = (y0 - y1) / L;
    // Cells: each evaluation covers the steps since the previous one.
    const rows = data?.current.nonlinear ?? [];
    const units = data?.units ?? [];
    for (let i = 0; i < steps.length; i++) {
      const a = xs.map(i > 0 ? steps[i - 1] : 0);
      const b = xs.map(steps[i]);
      const nl = rows[i] ?? [];
      for (let l = 0; l < names.length; l++) {
        const total = units[l] || 1;
        const linear = 1 - (nl[l] ?? 0) / total;
        p.rect(a, y1 + l * rowH, Math.max(1, b - a + 0.5), rowH + 0.5, SCALE.fill[SCALE.level(linear)]);
      }
    }
    p.strokeRect(x0, y1, x1 - x0, y0 - y1, { color: pal.axis, width: 1 });
    // Axes: layer names (forward order, top to bottom), steps.
    const every = Math.max(1, Math.ceil((TICK + 3) / rowH));
    for (let l = 0; l < names.length; l += every) {
      p.text(x0 - 6, y1 + (l + 0.5) * rowH, shortName(names[l], left - 10, p), { color: pal.muted, size: TICK,
        align: 'right', baseline: 'middle' });
    }
    for (const t of xs.ticks) {
      const label = xs.format(t);
      const half = p.measure(label, TICK) / 2 + 1;
      const x = Math.min(p.width - half, Math.max(half, xs.map(t))); // whole labels, even at the ends
      p.text(x, y0 + 5, label, { color: pal.muted, size: TICK, align: 'center', baseline: 'top' });
    }
    p.text((x0 + x1) / 2, p.height - 4, 'step', { color: pal.muted, size: TICK, align: 'center', baseline: 'bottom' });
    // Colour bar: fraction of the layer's units that are linear.
    const cx = x1 + 14;
    const n = 48;
    for (let k = 0; k < n; k++) {
      const v = 1 - k / (n - 1);
      p.rect(cx, y1 + (k * (y0 - y1)) / n, bar, (y0 - y1) / n + 0.5, SCALE.fill[SCALE.level(v)]);
    }
    p.strokeRect(cx, y1, bar, y0 - y1, { color: pal.axis, width: 1 });
    p.text(cx + bar + 4, y1 + 1, '1', { color: pal.muted, size: TICK, baseline: 'top' });
    p.text(cx + bar + 4, y0, '0', { color: pal.muted, size: TICK, baseline: 'bottom' });
    p.text(cx + bar + 14, (y0 + y1) / 2, 'fraction linear', { color: pal.muted, size: TICK, align: 'center',
      baseline: 'middle', rotate: 90 });
    if (!steps.length) {
      p.text((x0 + x1) / 2, (y0 + y1) / 2, 'no evaluation yet', { color: pal.fg, size: 14, align: 'center',
        baseline: 'middle' });
    }
    this.setLegend([
      { label: 'purple: all units nonlinear (ReLU)', color: SCALE.fill[0], box: true },
      { label: 'yellow: all linear', color: SCALE.fill[255], box: true }
    ]);
    this.setNote(data ? `A unit counts as linear when 1 − α ≤ ${data.tol}.` : '');
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    const data = this.data;
    const rows: (string | number | null)[][] = [];
    if (data) {
      const steps = data.current.evals.step ?? [];
      data.current.nonlinear.forEach((nl, i) => {
        nl.forEach((n, l) => rows.push([steps[i], data.layerNames[l] ?? String(l), n, data.units[l] ?? null]));
      });
    }
    return { header: ['step', 'layer', 'nonlinear_units', 'units'], rows };
  }
}
