/**
 * The network view's data, synced from the kernel and shown optimistically: every unit's layer, slope and state,
 * and the changes the page asked for but the kernel has not applied yet (shown at once, rolled back on refusal).
 */

import { decode } from '../codecs';
import { LayerInfo, UnitState } from '../network_view_types';

/** Word codes for labels: what a unit is now. */
export const WORDS = ['nonlinear', 'linear', 'forced linear', 'forced nonlinear'];
export const STATE_NAMES = ['free', 'forced linear', 'forced nonlinear'];
/** A click the kernel has not applied after this long is rolled back (with a note). */
export const PENDING_TIMEOUT_MS = 10000;

export interface Pending {
  state: number;
  t: number;
  id: string;
}

export interface LayerCounts {
  nonlinear: number;
  forcedLinear: number;
  forcedNonlinear: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Model = { get(name: string): any };

export class UnitData {
  layers: LayerInfo[] = [];
  slopes: Float32Array<ArrayBufferLike> = new Float32Array(0);
  states: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  acts: Float32Array<ArrayBufferLike> = new Float32Array(0);
  /** Layer index and index within the layer, per unit. */
  layerOf = new Uint16Array(0);
  unitOf = new Uint32Array(0);
  readonly pending = new Map<number, Pending>();
  /** How many times the kernel's states were read (painting reports it, for tests and benchmarks). */
  statesSeq = 0;
  tol = 1e-3;

  constructor(private readonly model: Model) {}

  get count(): number {
    return this.layerOf.length;
  }

  readLayout(): void {
    this.layers = this.model.get('layers') ?? [];
    const n = this.layers.reduce((a, l) => a + l.units, 0);
    this.layerOf = new Uint16Array(n);
    this.unitOf = new Uint32Array(n);
    this.layers.forEach((layer, li) => {
      for (let u = 0; u < layer.units; u++) {
        this.layerOf[layer.offset + u] = li;
        this.unitOf[layer.offset + u] = u;
      }
    });
    this.pending.clear();
  }

  readSlopes(): void {
    this.slopes = decode(this.model.get('slopes'), 'float32');
    this.tol = this.model.get('tol') ?? 1e-3;
  }

  /** Read the kernel's states; pending changes it has applied are confirmed (dropped from `pending`). */
  readStates(): void {
    this.states = decode(this.model.get('states'), 'uint8');
    this.statesSeq++;
    for (const [i, p] of this.pending) {
      if (this.states[i] === p.state) {
        this.pending.delete(i);
      }
    }
  }

  readActivations(): void {
    this.acts = decode(this.model.get('activations'), 'float32');
  }

  /** Pending changes older than the timeout: dropped; how many. */
  expire(now = performance.now()): number {
    let n = 0;
    for (const [i, p] of this.pending) {
      if (now - p.t > PENDING_TIMEOUT_MS) {
        this.pending.delete(i);
        n++;
      }
    }
    return n;
  }

  /** Drop the pending changes of one refused request; how many. */
  rollBack(id: string): number {
    let n = 0;
    for (const [i, p] of this.pending) {
      if (p.id === id) {
        this.pending.delete(i);
        n++;
      }
    }
    return n;
  }

  /** Show ``state`` for these units at once (request ``id``), except where the kernel already has it. */
  expect(units: number[], state: number, id: string, now = performance.now()): void {
    for (const i of units) {
      if (this.states[i] === state) {
        this.pending.delete(i);
      } else {
        this.pending.set(i, { state, t: now, id });
      }
    }
  }

  /** A unit's state as the page shows it: the one asked for while pending, else the kernel's. */
  stateOf(i: number): number {
    return this.pending.get(i)?.state ?? this.states[i] ?? UnitState.FREE;
  }

  /** The slope painted for a unit: a forced state shows its slope at once, before the kernel confirms it. */
  shownSlope(i: number): number {
    const s = this.stateOf(i);
    if (s === UnitState.LINEAR) {
      return 1;
    }
    if (s === UnitState.NONLINEAR) {
      return 0;
    }
    return this.slopes[i] ?? 0;
  }

  /** 0 nonlinear, 1 linear, 2 forced linear, 3 forced nonlinear (see WORDS). */
  wordOf(i: number): number {
    const s = this.stateOf(i);
    if (s === UnitState.LINEAR) {
      return 2;
    }
    if (s === UnitState.NONLINEAR) {
      return 3;
    }
    return 1 - (this.slopes[i] ?? 0) <= this.tol ? 1 : 0;
  }

  labelOf(i: number): string {
    return `${this.layers[this.layerOf[i]].name} unit ${this.unitOf[i]}: ${WORDS[this.wordOf(i)]}`;
  }

  layerCounts(li: number): LayerCounts {
    const layer = this.layers[li];
    const out = { nonlinear: 0, forcedLinear: 0, forcedNonlinear: 0 };
    for (let i = layer.offset; i < layer.offset + layer.units && i < this.count; i++) {
      const w = this.wordOf(i);
      out.nonlinear += w === 0 || w === 3 ? 1 : 0;
      out.forcedLinear += w === 2 ? 1 : 0;
      out.forcedNonlinear += w === 3 ? 1 : 0;
    }
    return out;
  }

  /** Units of layer ``li`` as global indices. */
  unitsOf(li: number): number[] {
    const l = this.layers[li];
    return Array.from({ length: l.units }, (_, k) => l.offset + k);
  }
}
