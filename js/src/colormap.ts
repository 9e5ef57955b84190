/**
 * The continuous colour scale for alpha (0: ReLU, nonlinear; 1: identity, linear): viridis, perceptually
 * uniform and readable with colour-vision deficiencies and on projectors.
 */

const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];

export const LEVELS = 256;

function hexToRgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export interface ColorScale {
  /** CSS colour per level. */
  fill: string[];
  /** A contrasting ink (for the state glyphs) per level. */
  ink: string[];
  /** The level of an alpha value (clamped to [0, 1]; NaN: level 0). */
  level(alpha: number): number;
  /** A CSS linear-gradient for the legend. */
  gradient: string;
}

export function viridis(): ColorScale {
  const stops = VIRIDIS.map(hexToRgb);
  const fill: string[] = [];
  const ink: string[] = [];
  for (let i = 0; i < LEVELS; i++) {
    const t = (i / (LEVELS - 1)) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(t));
    const f = t - k;
    const rgb = stops[k].map((c, j) => Math.round(c + (stops[k + 1][j] - c) * f));
    fill.push(`rgb(${rgb[0]},${rgb[1]},${rgb[2]})`);
    const luminance = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255;
    ink.push(luminance > 0.5 ? '#111111' : '#ffffff');
  }
  return {
    fill,
    ink,
    level: (alpha: number) => (alpha >= 0 ? Math.min(LEVELS - 1, Math.round(alpha * (LEVELS - 1))) : 0),
    gradient: `linear-gradient(to right, ${VIRIDIS.join(', ')})`
  };
}
