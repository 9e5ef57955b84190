/**
 * Axis scales and ticks for the charts: linear with "nice" steps (1, 2, 5 x 10^k) and log10 with decades.
 */

import { ChartData, lastStep } from './data';

export interface Scale {
  /** Data value -> pixel. */
  map(v: number): number;
  ticks: number[];
  format(v: number): string;
  log: boolean;
}

export function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const nice = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  return nice * mag;
}

/** Round ticks covering [lo, hi] (about `count` of them); the domain is widened to the outer ticks. */
export function niceDomain(lo: number, hi: number, count: number): { lo: number; hi: number; ticks: number[] } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, count);
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = a; v <= b + step * 1e-6; v += step) {
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return { lo: a, hi: b, ticks };
}

/** The smallest 1, 2 or 5 x 10^k that is >= v (axis ends that grow in few, round jumps). */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) {
    return 1;
  }
  const mag = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) {
    if (m * mag >= v * (1 - 1e-12)) {
      return m * mag;
    }
  }
  return 10 * mag;
}

/** The x axis end for a run: room ahead of the last point (round), never past the run's last step. */
export function stepAxisEnd(last: number, totalSteps: number): number {
  const end = niceCeil(Math.max(10, last * 1.15));
  return Math.max(1, Math.min(end, totalSteps > 0 ? totalSteps : end, Math.max(end, last)));
}

/** The x axis end every step chart shares at a moment: from the last step of any run shown. */
export function stepsEnd(data: ChartData | null): number {
  return stepAxisEnd(lastStep(data), data ? data.totalSteps : 0);
}

export function formatNumber(v: number, step = 0): string {
  if (!Number.isFinite(v)) {
    return '';
  }
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) {
    return v.toExponential(0).replace('e+', 'e');
  }
  if (a >= 1000 && step >= 1000) {
    return `${+(v / 1000).toFixed(1)}k`;
  }
  const digits = step > 0 ? Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))) : 2;
  return v.toFixed(digits);
}

export function linearScale(lo: number, hi: number, p0: number, p1: number, count: number, fixed = false): Scale {
  const d = fixed ? { lo, hi, ticks: niceDomain(lo, hi, count).ticks.filter(t => t >= lo - 1e-12 && t <= hi + 1e-12) }
    : niceDomain(lo, hi, count);
  const span = d.hi - d.lo || 1;
  const step = d.ticks.length > 1 ? d.ticks[1] - d.ticks[0] : span;
  return {
    map: v => p0 + ((v - d.lo) / span) * (p1 - p0),
    ticks: d.ticks,
    format: v => formatNumber(v, step),
    log: false
  };
}

/** log10 scale over [lo, hi] (positive), widened to whole decades. */
export function logScale(lo: number, hi: number, p0: number, p1: number): Scale {
  if (!(lo > 0) || !Number.isFinite(lo)) {
    lo = 1e-6;
  }
  if (!(hi > lo)) {
    hi = lo * 10;
  }
  const a = Math.floor(Math.log10(lo) + 1e-9);
  const b = Math.max(a + 1, Math.ceil(Math.log10(hi) - 1e-9));
  const ticks: number[] = [];
  const every = Math.max(1, Math.ceil((b - a) / 6));
  for (let k = a; k <= b; k += every) {
    ticks.push(Math.pow(10, k));
  }
  return {
    map: v => (v > 0 ? p0 + ((Math.log10(v) - a) / (b - a)) * (p1 - p0) : NaN),
    ticks,
    format: v => {
      const k = Math.round(Math.log10(v));
      return k >= -2 && k <= 3 ? String(+v.toPrecision(1)) : `1e${k}`;
    },
    log: true
  };
}
