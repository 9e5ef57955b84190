/** What the charts read: the current run's curves, earlier runs' (faded overlays) and the model's layers. */

export type Column = (number | null)[];

export interface RunSeries {
  label: string;
  /** Per-step columns: step, loss. */
  steps: Record<string, Column>;
  /** Per-evaluation columns: step, train_loss, test_acc, sparsity, apl_normalized, nonlinear_total, ... */
  evals: Record<string, Column>;
  /** Nonlinear units per layer, one row per evaluation. */
  nonlinear: number[][];
}

export interface ChartData {
  current: RunSeries;
  overlays: RunSeries[];
  /** The run's last step (x axes end there, so they do not jump while it trains). */
  totalSteps: number;
  layerNames: string[];
  units: number[];
  /** A unit counts as nonlinear when 1 - alpha > tol. */
  tol: number;
}

export function emptyRun(label = ''): RunSeries {
  return { label, steps: { step: [], loss: [] }, evals: { step: [] }, nonlinear: [] };
}

/** The last step any run has reached, per step or per evaluation (every step chart ends its x axis from it). */
export function lastStep(data: ChartData | null): number {
  let last = 0;
  for (const run of data ? [...data.overlays, data.current] : []) {
    for (const col of [run.steps.step ?? [], run.evals.step ?? []]) {
      for (let i = col.length - 1; i >= 0; i--) {
        const v = col[i];
        if (v !== null && Number.isFinite(v)) {
          last = Math.max(last, v);
          break;
        }
      }
    }
  }
  return last;
}

export function num(v: number | null | undefined): number {
  return v === null || v === undefined ? NaN : v;
}

/** Exponential moving average, debiased (TensorBoard's smoothing); gaps stay gaps. */
export function smooth(ys: Column, weight: number): number[] {
  const out: number[] = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = num(ys[i]);
    if (!Number.isFinite(y)) {
      out[i] = NaN;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = weight > 0 ? last / (1 - Math.pow(weight, n)) : y;
  }
  return out;
}
