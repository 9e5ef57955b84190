/** Colours of the explorer: a diverging scale for cosines (blue -1, near-white 0, red +1) and one per method. */

import { parseColor } from '../colormap';

const STOPS: [number, string][] = [[-1, '#2166ac'], [-0.5, '#92c5de'], [0, '#f7f7f7'], [0.5, '#f4a582'],
  [1, '#b2182b']];

/** The cell colour of a cosine in [-1, 1]. */
export function cosineColor(v: number): string {
  const t = Math.max(-1, Math.min(1, Number.isFinite(v) ? v : 0));
  for (let i = 1; i < STOPS.length; i++) {
    const [b, cb] = STOPS[i];
    if (t <= b) {
      const [a, ca] = STOPS[i - 1];
      const f = (t - a) / (b - a);
      const x = parseColor(ca);
      const y = parseColor(cb);
      const mix = x.map((c, k) => Math.round(c + (y[k] - c) * f));
      return `rgb(${mix[0]}, ${mix[1]}, ${mix[2]})`;
    }
  }
  return STOPS[STOPS.length - 1][1];
}

/** Text on a cosine cell: white on the dark ends, near-black between (readable on every cell). */
export function cosineText(v: number): string {
  return Math.abs(v) > 0.55 ? '#ffffff' : '#111111';
}

/** The palette's series key of each method (one colour per method, in every chart). */
export const METHOD_SERIES: Record<string, string> = {
  exact: 'train', etf: 'apl_normalized', meanfield: 'sparsity', magnitude: 'test', kmeans: 'apl_unnormalized',
  sgd: 'nonlinear', dragged: 'nonlinear'
};
