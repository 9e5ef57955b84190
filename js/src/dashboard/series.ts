/**
 * The page's copy of the curves: the current run (appended to by each `series` message) and earlier runs kept as
 * overlays. Bounded: past the caps, every other point is dropped (the picture keeps its shape).
 */

import { ChartData, RunSeries, emptyRun } from '../charts/data';
import { Columns, EvalColumns, Overlay } from './types';

export const STEP_CAP = 20000;
export const EVAL_CAP = 4000;

function halve(cols: Columns): void {
  for (const k of Object.keys(cols)) {
    cols[k] = cols[k].filter((_, i) => i % 2 === 0);
  }
}

function toRun(label: string, steps: Columns, evals: EvalColumns): RunSeries {
  const { nonlinear, ...rest } = evals;
  return { label, steps: { step: [], loss: [], ...steps }, evals: { step: [], ...rest }, nonlinear: nonlinear ?? [] };
}

export class SeriesStore {
  run = -1;
  current: RunSeries = emptyRun('this run');
  overlays: RunSeries[] = [];
  version = 0;

  reset(run: number, steps: Columns, evals: EvalColumns, overlays: Overlay[]): void {
    this.run = run;
    this.current = toRun('this run', steps, evals);
    this.overlays = overlays.map(o => toRun(o.label, o.steps, o.evals));
    this.version++;
  }

  /** Append a `series` message; false if it belongs to another run (a snapshot is due). */
  append(run: number, steps: Columns, evals: EvalColumns): boolean {
    if (run !== this.run) {
      return false;
    }
    const add = (into: Columns, from: Columns) => {
      const n = (from.step ?? Object.values(from)[0] ?? []).length;
      const before = (into.step ?? []).length;
      for (const k of new Set([...Object.keys(into), ...Object.keys(from)])) {
        const col = into[k] ?? (into[k] = new Array(before).fill(null));
        const src = from[k];
        for (let i = 0; i < n; i++) {
          col.push(src ? src[i] : null);
        }
      }
    };
    const { nonlinear, ...rest } = evals;
    add(this.current.steps, steps);
    add(this.current.evals, rest);
    if (nonlinear) {
      this.current.nonlinear.push(...nonlinear);
    }
    if ((this.current.steps.step ?? []).length > STEP_CAP) {
      halve(this.current.steps);
    }
    if ((this.current.evals.step ?? []).length > EVAL_CAP) {
      halve(this.current.evals);
      this.current.nonlinear = this.current.nonlinear.filter((_, i) => i % 2 === 0);
    }
    this.version++;
    return true;
  }

  chartData(totalSteps: number, layerNames: string[], units: number[], tol: number): ChartData {
    return { current: this.current, overlays: this.overlays, totalSteps, layerNames, units, tol };
  }
}
