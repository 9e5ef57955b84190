/**
 * The frame of an x-y chart, drawn before its data: grid lines at the ticks, the two axis lines, the tick labels
 * (x labels kept whole at the canvas's ends) and the two axis titles.
 */

import { Painter } from './painter';
import { Scale } from './scale';
import { Palette } from './theme';

/** Tick labels' and axis titles' font size (px). */
export const TICK = 14;

/** Pixels left around the plot inside the canvas. */
export interface Margins {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** The plot's box in canvas pixels: x0 left, x1 right, y0 bottom (the x axis), y1 top. */
export interface PlotBox {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export interface AxisTitles {
  x: string;
  y: string;
  /** Where the rotated y title's centre line is, from the canvas's left edge (px). */
  yAt?: number;
}

/** The plot's box on a ``width`` x ``height`` canvas with these margins. */
export function plotBox(size: { width: number; height: number }, m: Margins): PlotBox {
  return { x0: m.left, x1: size.width - m.right, y0: size.height - m.bottom, y1: m.top };
}

/** Draw the frame of ``box`` for the scales ``xs`` and ``ys`` (their ticks are the grid and the labels). */
export function drawAxes(p: Painter, box: PlotBox, xs: Scale, ys: Scale, titles: AxisTitles,
  pal: Pick<Palette, 'grid' | 'axis' | 'muted'>): void {
  const { x0, x1, y0, y1 } = box;
  const grid: number[] = [];
  for (const t of ys.ticks) {
    grid.push(x0, ys.map(t), x1, ys.map(t));
  }
  for (const t of xs.ticks) {
    grid.push(xs.map(t), y0, xs.map(t), y1);
  }
  p.segments(grid, { color: pal.grid, width: 1 });
  p.segments([x0, y0, x1, y0, x0, y0, x0, y1], { color: pal.axis, width: 1 });
  const muted = { color: pal.muted, size: TICK };
  for (const t of ys.ticks) {
    p.text(x0 - 6, ys.map(t), ys.format(t), { ...muted, align: 'right', baseline: 'middle' });
  }
  for (const t of xs.ticks) {
    const label = xs.format(t);
    const half = p.measure(label, TICK) / 2 + 1;
    const x = Math.min(p.width - half, Math.max(half, xs.map(t))); // whole labels, even at the ends
    p.text(x, y0 + 5, label, { ...muted, align: 'center', baseline: 'top' });
  }
  p.text((x0 + x1) / 2, p.height - 4, titles.x, { ...muted, align: 'center', baseline: 'bottom' });
  p.text(titles.yAt ?? 13, (y0 + y1) / 2, titles.y, { ...muted, align: 'center', baseline: 'middle', rotate: -90 });
}
