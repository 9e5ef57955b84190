/**
 * The typed contract of the compression explorer: its synced state (the mirror of COMPRESSION_FIELDS in
 * nonlin_explorer/ui/compression_controller.py) and its messages.
 */

/** One valid setting of the explorer (ExplorerParams). */
export interface Params {
  N: number;
  M: number;
  d: number;
  weight_dist: string;
  w_mean: number;
  w_spread: number;
  a_mean: number;
  a_std: number;
  seed: number;
  activation: string;
  method: string;
}

export type ParamKey = keyof Params;

export interface Options {
  weight_dists: string[];
  activations: string[];
  methods: string[];
  sweep_methods: string[];
  M_max: number;
  sweep_M_max: number;
  files_root: string;
}

export interface Status {
  state: 'idle' | 'optimizing' | 'done' | 'error';
  gen: number;
  applied: number;
  method: string;
  iteration: number | null;
  relative_loss: number | null;
  dragged: boolean;
  error: string;
}

/** The nearest named shape (compression/diagnostics.py frame_shape) and its Gram matrix (null: none is drawn). */
export interface Ideal {
  name: string;
  title: string;
  gram: (number | null)[][] | null;
}

export interface Shown {
  M: number;
  d: number;
  method: string;
  loss: number;
  relative_loss: number;
  dragged: boolean;
  gram: (number | null)[][];
  ideal: Ideal;
  /** The unit directions on the two leading principal axes, and the target's linear direction there. */
  pca: { x: number[]; y: number[]; arrow: number[] };
  /** The unit directions on the three leading principal axes (the 3-D view), and the linear direction. */
  coords3: number[][];
  arrow3: number[];
  explained3: number[];
  rows: [string, string][];
  params: Params;
}

export interface Convergence {
  gen: number;
  iteration: number[];
  relative_loss: number[];
}

export interface Sweep {
  key: string | null;
  methods: string[];
  Ms: number[];
  /** method -> M (as text) -> relative loss. */
  losses: Record<string, Record<string, number | null>>;
  done: number;
  total: number;
  running: boolean;
  error: string;
}

/** The synced state. */
export interface CompressionModel {
  theme: 'auto' | 'light' | 'dark';
  params: Params;
  options: Options;
  status: Status;
  shown: Shown | Record<string, never>;
  convergence: Convergence;
  sweep: Sweep;
  notice: { text?: string; kind?: string; seq?: number };
}

/** Kernel -> page. */
export type CompressionMessage =
  | { type: 'ack'; id: string }
  | { type: 'error'; id?: string | null; message: string }
  | { type: 'answer'; id?: string | null; kind: string; text: string };
