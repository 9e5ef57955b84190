/**
 * A widget model without a kernel (after lonboard's src/tests/fake-widget-model.ts): `get`/`set`/`on`/`off`/
 * `save_changes`/`send` as anywidget's AnyModel has them, recording what the view sent and saved.
 */

import type { AnyModel } from '@anywidget/types';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Callback = (...args: any[]) => void;

export class FakeWidgetModel implements AnyModel {
  readonly widget_manager = {} as AnyModel['widget_manager'];
  private readonly values = new Map<PropertyKey, unknown>();
  private readonly handlers = new Map<string, Set<Callback>>();
  /** Messages given to `send`, in order. */
  readonly sent: unknown[] = [];
  /** How many times `save_changes` was called. */
  saves = 0;

  constructor(initial: Record<string, unknown> = {}, readonly hasSend = true) {
    for (const [k, v] of Object.entries(initial)) {
      this.values.set(k, v);
    }
    if (!hasSend) {
      // Panel's AnyWidgetComponent model: no `send` (requests travel as a synced property).
      (this as { send?: unknown }).send = undefined;
    }
  }

  get(name: PropertyKey): unknown {
    return this.values.get(name);
  }

  set(name: PropertyKey, value: unknown): void {
    this.values.set(name, value);
    for (const cb of this.handlers.get(`change:${String(name)}`) ?? []) {
      cb(value);
    }
  }

  on(event: string, cb: Callback): void {
    if (!this.handlers.has(event)) {
      this.handlers.set(event, new Set());
    }
    this.handlers.get(event)!.add(cb);
  }

  off(event: string, cb?: Callback): void {
    if (cb) {
      this.handlers.get(event)?.delete(cb);
    } else {
      this.handlers.delete(event);
    }
  }

  save_changes(): void {
    this.saves++;
  }

  send(message: unknown): void {
    this.sent.push(message);
  }

  /** A message from the kernel, as `msg:custom` delivers it. */
  receive(message: unknown): void {
    for (const cb of this.handlers.get('msg:custom') ?? []) {
      cb(message, []);
    }
  }
}

/** A binary array as the kernel sends it: `{view: DataView, dtype, shape}`. */
export function binary(values: number[], dtype: 'float32' | 'uint8'): { view: DataView; dtype: string; shape: number[] } {
  const typed = dtype === 'float32' ? new Float32Array(values) : new Uint8Array(values);
  return { view: new DataView(typed.buffer), dtype, shape: [values.length] };
}
