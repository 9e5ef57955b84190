/**
 * The typed contract of the early-vs-late view: its synced state (the mirror of ADVANTAGE_FIELDS in
 * nonlin_explorer/ui/advantage_controller.py) and its messages.
 */

export type Values = (number | null)[];

/** One schedule of the stored set: means over seeds per lambda (sorted by count), +- one s.d., and every run. */
export interface StoredLine {
  x: Values;
  y: Values;
  lo: Values;
  hi: Values;
  sparsity: Values;
  run_x: Values;
  run_y: Values;
  run_seed: Values;
  run_sparsity: Values;
}

/** The gap averaged over matched counts in a band of counts, with its interval over seeds (accuracy points). */
export interface BandGap {
  mean: number | null;
  half: number | null;
  seeds: number;
  ahead: number;
  verdict: string;
  from: number | null;
  to: number | null;
}

export interface StoredSet {
  ok: boolean;
  name: string;
  path: string;
  label: string;
  /** Why nothing is drawn (ok false). */
  message?: string;
  seeds?: number;
  sparsities?: number[];
  units?: number | null;
  /** The few-units threshold (1/6 of the units). */
  few?: number | null;
  level?: number;
  lines?: Record<string, StoredLine>;
  gap?: { x: Values; y: Values; lo: Values; hi: Values; seeds: number[] };
  gap_few?: BandGap;
  gap_many?: BandGap;
}

export interface LivePoint {
  schedule: string;
  sparsity: number;
  seed: number;
  test_acc: number | null;
  nonlinear: number | null;
  apl_normalized: number | null;
  apl_unnormalized: number | null;
  status: string;
}

export interface Live {
  points: LivePoint[];
  gap: { count: number | null; apl: number | null; count_points: number; apl_points: number };
  label: string;
}

export interface Progress {
  state: string;
  done: number;
  total: number;
  elapsed: number;
  error: string;
}

export interface Settings {
  sparsities: string;
  seeds: string;
  epochs: number;
  set: string;
  config: string;
}

/** The synced state. */
export interface AdvantageModel {
  heading: string;
  theme: 'auto' | 'light' | 'dark';
  stored: StoredSet;
  live: Live;
  progress: Progress;
  settings: Settings;
  options: { sets: string[]; files_root: string };
  notice: { text?: string; kind?: string; seq?: number; lasting?: boolean };
}

/** Kernel -> page. */
export type AdvantageMessage =
  | { type: 'ack'; id: string }
  | { type: 'error'; id?: string | null; message: string };
