/**
 * The typed contract of NetworkView: its synced state and its messages, trait for trait the mirror of
 * nonlin_explorer/ui/network_view.py.
 */

import type { BinaryArray } from './codecs';

/** nonlin_explorer.gates.UnitState */
export const UnitState = { FREE: 0, LINEAR: 1, NONLINEAR: 2 } as const;
export type UnitState = (typeof UnitState)[keyof typeof UnitState];

export interface LayerInfo {
  name: string;
  units: number;
  /** Index of the layer's first unit in the flat per-unit arrays. */
  offset: number;
  /** Index into `blocks`, or -1. */
  block: number;
}

export interface BlockInfo {
  name: string;
  /** First and last layer (indices) of the block; its skip runs from layer first - 1 to last. */
  first: number;
  last: number;
  /** The skip has a projection (1x1 conv). */
  projection: boolean;
}

/** The synced traits of NetworkView. */
export interface NetworkViewModel {
  layers: LayerInfo[];
  blocks: BlockInfo[];
  /** float32, one effective alpha per unit. */
  slopes: BinaryArray<'float32'>;
  /** uint8 UnitState per unit. */
  states: BinaryArray<'uint8'>;
  /** float32 mean activation per unit (NaN: unknown). */
  activations: BinaryArray<'float32'>;
  tol: number;
  title: string;
  /** "model" (no session) or the session's status. */
  status: string;
  step: number;
  /** Units per sub-column before a layer wraps; 0: chosen to fit. */
  max_rows: number;
  /** Only where the host has no custom messages (Panel): the latest request, numbered by `seq`. */
  request?: NetworkViewRequest & { seq: number };
}

/** Front end -> kernel (sent through a transport.Channel, which adds an `id`). `units: null`: every unit of the
 * layer. */
export type NetworkViewRequest =
  | { type: 'set_state'; targets: { layer: number; units: number[] | null }[]; state: UnitState }
  | { type: 'refresh' };

/** Kernel -> front end: the answer to a request (by its id), see transport.ts. */
export type NetworkViewReply =
  | { type: 'ack'; id: string }
  | { type: 'error'; id?: string | null; message: string };
