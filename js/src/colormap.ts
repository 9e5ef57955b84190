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

/** A '#rrggbb' or 'rgb(r,g,b)' colour as its channels (0-255). */
export function parseColor(css: string): [number, number, number] {
  if (css.startsWith('#')) {
    return hexToRgb(css);
  }
  const m = css.match(/[\d.]+/g) ?? ['0', '0', '0'];
  return [Number(m[0]), Number(m[1]), Number(m[2])];
}

function luminance(css: string): number {
  const lin = parseColor(css).map(v => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
}

/** WCAG contrast ratio of two colours (1 to 21); marks need >= 3 against their background (non-text contrast). */
export function contrastRatio(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** Marks below this contrast against the background get an edge (WCAG 1.4.11, non-text contrast). */
export const MARK_CONTRAST = 3;

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
