/**
 * Light and dark palettes for the charts and the dashboard. Text colours meet WCAG AA (>= 4.5:1) on their
 * backgrounds; series colours are told apart on both. One colour meaning everywhere: viridis for how linear a unit
 * (or a layer) is, purple = nonlinear (ReLU, alpha 0), yellow = linear (alpha 1).
 */

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

export const LIGHT: Palette = {
  name: 'light',
  bg: '#ffffff',
  fg: '#1b1b1b',
  muted: '#4a4a4a',
  grid: '#e6e6e6',
  axis: '#6b6b6b',
  series: {
    batch: '#a8a8a8',
    train: '#1f6fb4',
    test: '#c62828',
    apl_normalized: '#2e7d32',
    apl_unnormalized: '#7b3fb0',
    sparsity: '#d35400',
    nonlinear: '#00838f',
    units: '#cfcfcf'
  }
};

export const DARK: Palette = {
  name: 'dark',
  bg: '#15181d',
  fg: '#ececec',
  muted: '#b8bcc4',
  grid: '#2e333b',
  axis: '#8d939d',
  series: {
    batch: '#6d7179',
    train: '#64b5f6',
    test: '#ff8a80',
    apl_normalized: '#81c784',
    apl_unnormalized: '#ce93d8',
    sparsity: '#ffb74d',
    nonlinear: '#4dd0e1',
    units: '#4a4f57'
  }
};

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
