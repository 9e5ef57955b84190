/**
 * The typed contract of the training dashboard: its synced state (the mirror of DASHBOARD_FIELDS in
 * nonlin_explorer/ui/dashboard_controller.py, network fields included) and its messages.
 */

import type { BinaryArray } from '../codecs';
import type { NetworkViewModel } from '../network_view_types';
import type { RunSettingKey } from '../generated/tables';

export interface RunStatus {
  status: string;
  reason: string;
  step: number;
  total_steps: number;
  /** Lambda in force (0 while the prior is off). */
  sparsity: number;
  /** Lambda set for the run (in force once the prior is on). */
  target_sparsity: number;
  lr: number;
  prior_on: boolean;
  switch_step: number;
  device: string;
  device_kind: string;
  test_acc: number | null;
  tol: number;
  eval_every: number;
  gate_names: string[];
  units: number[];
  resetting: boolean;
}

/** The run settings: one field per key of nonlin_explorer/ui/dashboard_settings.json (checked below), plus revision. */
export interface RunSettings extends Record<RunSettingKey, string | number | null | undefined> {
  dataset: string;
  model: string;
  width: number | null;
  depth: number | null;
  seed: number;
  epochs: number;
  schedule: string;
  sparsity: number;
  lr: number;
  /** Bumped when a failed reset puts the form back (the settings themselves did not change). */
  revision?: number;
}

type MustBeNever<T extends never> = T;
/** Compiles only while RunSettings has no field outside the shared list (and revision). */
export type RunSettingsHasOnlyListedKeys = MustBeNever<Exclude<keyof RunSettings, RunSettingKey | 'revision'>>;

export interface Options {
  datasets: string[];
  models: string[];
  schedules: string[];
  sparsity_stops: number[];
  lr_stops: number[];
  speeds: number[];
  limits: Record<string, [number, number]>;
  files_root: string;
}

export interface ReplayState {
  playing?: boolean;
  finished?: boolean;
  eval_index?: number;
  evals?: number;
  speed?: number;
  timed?: boolean;
}

/** The synced state: the network view's fields and the dashboard's own. */
export interface DashboardModel extends NetworkViewModel {
  heading: string;
  mode: 'live' | 'replay';
  theme: 'auto' | 'light' | 'dark';
  run: RunStatus;
  settings: RunSettings;
  options: Options;
  code: string;
  notice: { text?: string; kind?: string; seq?: number; lasting?: boolean };
  replay: ReplayState;
  /** 2-D inputs only: the predicted class on an n x n grid (row-major, top row first). */
  boundary: BinaryArray<'uint8'>;
  boundary_info: { n: number; x: [number, number]; y: [number, number]; classes: number; step: number };
  /** 2-D inputs only: test points (x, y interleaved) and their classes. */
  points: BinaryArray<'float32'>;
  point_labels: BinaryArray<'uint8'>;
}

export type Columns = Record<string, (number | null)[]>;
export type EvalColumns = Columns & { nonlinear?: number[][] };

export interface Overlay {
  run: number;
  label: string;
  steps: Columns;
  evals: EvalColumns;
}

/** Kernel -> page. */
export type DashboardMessage =
  | { type: 'series'; run: number; steps: Columns; evals: EvalColumns }
  | { type: 'snapshot'; run: number; steps: Columns; evals: EvalColumns; overlays: Overlay[] }
  | { type: 'ack'; id: string }
  | { type: 'error'; id?: string | null; message: string };
