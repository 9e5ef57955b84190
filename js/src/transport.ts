/**
 * Requests from a view to its controller, and the controller's answers (mirror of nonlin_explorer/ui/controller.py).
 *
 * Every request carries an `id`; the controller answers `{type: "ack", id}` when it has acted on it, or
 * `{type: "error", id, message}` when it refused it. Views show a request's effect at once (optimistically) and
 * roll it back on an error. Hosts: anywidget has `model.send`; Panel's AnyWidgetComponent has none, so there the
 * request travels as the synced `request` property, numbered by `seq` so that a repeated request is a change.
 */

import type { AnyModel } from '@anywidget/types';

export interface Request {
  type: string;
  [key: string]: unknown;
}

export type Reply =
  | { type: 'ack'; id: string }
  | { type: 'error'; id: string | null; message: string }
  | { type: string; id?: string | null; [key: string]: unknown };

let views = 0;

/** One view's channel to its controller: numbered requests, answers routed back by id. */
export class Channel {
  private readonly prefix = `v${++views}-${Math.random().toString(36).slice(2, 8)}`;
  private count = 0;
  private seq = 0;
  private readonly sentAt = new Map<string, number>();
  /** Milliseconds from sending to the controller's answer, for the requests answered so far (benchmarks). */
  readonly answered: number[] = [];

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  constructor(private readonly model: AnyModel<any>) {}

  /** Send a request; returns its id. */
  send(request: Request): string {
    const id = `${this.prefix}-${++this.count}`;
    const message = { ...request, id };
    this.sentAt.set(id, performance.now());
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const model = this.model as any;
    if (typeof model.send === 'function') {
      model.send(message);
    } else {
      model.set('request', { ...message, seq: ++this.seq });
      model.save_changes();
    }
    return id;
  }

  /** True if this channel sent the request with this id (answers reach every view of a model). */
  owns(id: unknown): id is string {
    return typeof id === 'string' && this.sentAt.has(id);
  }

  /** Note that the request was answered (ack or error); returns the time it took in ms. */
  settle(id: string): number {
    const t = this.sentAt.get(id);
    this.sentAt.delete(id);
    const ms = t === undefined ? NaN : performance.now() - t;
    if (Number.isFinite(ms)) {
      this.answered.push(ms);
      if (this.answered.length > 1000) {
        this.answered.shift();
      }
    }
    return ms;
  }
}
