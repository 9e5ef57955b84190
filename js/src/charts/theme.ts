/**
 * Light and dark palettes for the charts and the dashboard. Text colours meet WCAG AA (>= 4.5:1) on their
 * backgrounds; series colours are told apart on both. One colour meaning everywhere: viridis for how linear a unit
 * (or a layer) is, purple = nonlinear (ReLU, alpha 0), yellow = linear (alpha 1).
 */
import { PALETTES } from '../generated/tables';

export type ThemeName = 'light' | 'dark';

export interface Palette {
  name: ThemeName;
  bg: string;
  fg: string;
  muted: string;
  grid: string;
  axis: string;
  series: Record<string, string>;
}

function fromTable(name: ThemeName): Palette {
  const p = PALETTES[name];
  return { name, bg: p.background, fg: p.text, muted: p.muted, grid: p.grid, axis: p.axis, series: { ...p.series } };
}

/** The palettes of nonlin_explorer/ui/palette.json (the Bokeh figures of the Panel apps read the same file). */
export const LIGHT: Palette = fromTable('light');
export const DARK: Palette = fromTable('dark');

/** "light" or "dark" for a setting: "auto" follows JupyterLab's theme, else the system's preference. */
export function resolveTheme(setting: string | undefined): ThemeName {
  if (setting === 'light' || setting === 'dark') {
    return setting;
  }
  const lab = document.body?.dataset?.jpThemeLight;
  if (lab === 'true' || lab === 'false') {
    return lab === 'true' ? 'light' : 'dark';
  }
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function palette(name: ThemeName): Palette {
  return name === 'dark' ? DARK : LIGHT;
}
