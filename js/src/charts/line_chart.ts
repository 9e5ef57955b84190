/**
 * Curves against training steps: the current run in full colour, earlier runs faded behind it, an optional log
 * axis and smoothing (for losses), step-shaped lines for values that jump (lambda), gaps where a value is missing.
 */

import { Margins, drawAxes, plotBox } from './axes';
import { Chart, LegendItem, el } from './chart';
import { ChartData, Column, RunSeries, num, smooth } from './data';
import { Painter } from './painter';
import { Scale, linearScale, logScale, stepsEnd } from './scale';

export interface SeriesSpec {
  /** Column name (in the per-step or per-evaluation columns). */
  key: string;
  label: string;
  /** Palette series key. */
  color: string;
  source: 'steps' | 'evals';
  width?: number;
  dash?: number[];
  /** Hold each value until the next one (lambda). */
  step?: boolean;
  /** Smoothed by the chart's smoothing slider. */
  smooth?: boolean;
  /** Values <= 0 are gaps (log axes). */
  positive?: boolean;
}

export interface LineChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: SeriesSpec[];
  /** A fixed y range (accuracy: 0..1). */
  yRange?: [number, number];
  /** "always": a log axis; "toggle": a checkbox switches it; otherwise linear. */
  log?: 'always' | 'toggle';
  smoothing?: boolean;
  note?: (data: ChartData) => string;
}

const MARGIN: Margins = { left: 58, right: 14, top: 10, bottom: 42 };

export class LineChart extends Chart {
  private logOn: boolean;
  private weight = 0;
  private data: ChartData | null = null;

  constructor(private readonly spec: LineChartSpec, height = 220) {
    super(spec.id, spec.title, height);
    this.logOn = spec.log === 'always';
    if (spec.log === 'toggle') {
      const id = `ne-log-${spec.id}-${Math.random().toString(36).slice(2, 7)}`;
      const box = el('input', { type: 'checkbox', id, class: 'ne-log-toggle' });
      box.addEventListener('change', () => {
        this.logOn = box.checked;
        this.invalidate();
      });
      const label = el('label', { for: id, class: 'ne-tool-label' }, 'log');
      this.toolbar.prepend(box, label);
    }
    if (spec.smoothing) {
      const id = `ne-smooth-${spec.id}-${Math.random().toString(36).slice(2, 7)}`;
      const slider = el('input', { type: 'range', id, min: '0', max: '0.99', step: '0.01', value: '0',
        class: 'ne-smooth', 'aria-label': `${spec.title}: smoothing` });
      slider.addEventListener('input', () => {
        this.weight = Number(slider.value);
        this.invalidate();
      });
      const label = el('label', { for: id, class: 'ne-tool-label' }, 'smooth');
      this.toolbar.prepend(label, slider);
    }
  }

  get log(): boolean {
    return this.logOn;
  }

  setData(data: ChartData): void {
    this.data = data;
    this.invalidate();
  }

  private xy(run: RunSeries, s: SeriesSpec): { x: Column; y: Column } {
    const cols = s.source === 'steps' ? run.steps : run.evals;
    return { x: cols.step ?? [], y: cols[s.key] ?? [] };
  }

  private yValues(run: RunSeries, s: SeriesSpec): number[] {
    const { y } = this.xy(run, s);
    const ys = s.smooth && this.weight > 0 ? smooth(y, this.weight) : y.map(num);
    return this.logOn || s.positive ? ys.map(v => (v > 0 ? v : NaN)) : ys;
  }

  protected draw(p: Painter): void {
    const pal = this.palette;
    p.font = this.font;
    p.clear(pal.bg);
    const data = this.data;
    const box = plotBox(p, MARGIN);
    const { x0, x1, y0, y1 } = box;
    const runs = data ? [...data.overlays, data.current] : [];
    // The y range over what is drawn; the x range the one all step charts share.
    let lo = Infinity;
    let hi = -Infinity;
    for (const run of runs) {
      for (const s of this.spec.series) {
        for (const v of this.yValues(run, s)) {
          if (Number.isFinite(v)) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
          }
        }
      }
    }
    const xmax = stepsEnd(data);
    this.el.dataset.xEnd = String(xmax);
    const xs = linearScale(0, xmax, x0, x1, Math.max(2, Math.floor((x1 - x0) / 90)), true);
    let ys: Scale;
    if (this.logOn) {
      ys = logScale(Number.isFinite(lo) ? lo : 1e-3, Number.isFinite(hi) ? hi : 1, y0, y1);
    } else if (this.spec.yRange) {
      ys = linearScale(this.spec.yRange[0], this.spec.yRange[1], y0, y1, 5, true);
    } else {
      ys = linearScale(Number.isFinite(lo) ? lo : 0, Number.isFinite(hi) ? hi : 1, y0, y1,
        Math.max(3, Math.floor((y0 - y1) / 40)));
    }
    drawAxes(p, box, xs, ys, { x: this.spec.xLabel, y: this.spec.yLabel + (this.logOn ? ' (log)' : '') }, pal);
    // Curves: earlier runs faded, then this one; smoothed curves over their raw values.
    p.clip(x0, y1 - 2, x1 - x0, y0 - y1 + 4);
    runs.forEach((run, k) => {
      const faded = k < runs.length - 1;
      for (const s of this.spec.series) {
        const { x } = this.xy(run, s);
        const yv = this.yValues(run, s);
        const color = pal.series[s.color] ?? pal.fg;
        const style = { color, width: faded ? 1.2 : (s.width ?? 2), dash: s.dash, alpha: faded ? 0.35 : 1 };
        if (s.smooth && this.weight > 0 && !faded) {
          const raw = this.xy(run, s).y.map(num).map(v => (this.logOn && !(v > 0) ? NaN : v));
          this.line(p, xs, ys, x, raw, s.step, { color, width: 1, alpha: 0.3 });
        }
        this.line(p, xs, ys, x, yv, s.step, style);
      }
    });
    p.unclip();
    if (!data || runs.every(r => (r.evals.step ?? []).length === 0 && (r.steps.step ?? []).length === 0)) {
      p.text((x0 + x1) / 2, (y0 + y1) / 2, 'no data yet: press Start', { color: pal.muted, size: 14,
        align: 'center', baseline: 'middle' });
    }
    const items: LegendItem[] = this.spec.series.map(s => ({ label: s.label, color: pal.series[s.color] ?? pal.fg,
      dash: !!s.dash }));
    if (data && data.overlays.length) {
      items.push({ label: `earlier runs (${data.overlays.length}, faded)`, color: pal.muted, faded: true });
    }
    this.setLegend(items);
    this.setNote(data && this.spec.note ? this.spec.note(data) : '');
  }

  private line(p: Painter, xs: Scale, ys: Scale, x: Column, y: number[], step: boolean | undefined,
    style: { color: string; width: number; dash?: number[]; alpha?: number }): void {
    const px: number[] = [];
    const py: number[] = [];
    for (let i = 0; i < y.length; i++) {
      const xv = xs.map(num(x[i]));
      const yv = Number.isFinite(y[i]) ? ys.map(y[i]) : NaN;
      if (step && i > 0 && Number.isFinite(yv) && py.length && Number.isFinite(py[py.length - 1])) {
        px.push(xv);
        py.push(py[py.length - 1]);
      }
      px.push(xv);
      py.push(yv);
    }
    p.polyline(px, py, style);
  }

  protected csvRows(): { header: string[]; rows: (string | number | null)[][] } {
    const data = this.data;
    const header = ['run', 'series', 'step', 'value'];
    const rows: (string | number | null)[][] = [];
    if (!data) {
      return { header, rows };
    }
    for (const run of [...data.overlays, data.current]) {
      for (const s of this.spec.series) {
        const { x, y } = this.xy(run, s);
        for (let i = 0; i < y.length; i++) {
          rows.push([run.label, s.key, x[i], y[i]]);
        }
      }
    }
    return { header, rows };
  }
}
