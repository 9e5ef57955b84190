/**
 * What the user does to units: a click cycles a unit's state (shift or ctrl: adds it to the selection),
 * shift-drag selects a rectangle (alt-drag takes units out), the keyboard moves between units (arrows, Home/End,
 * PageUp/PageDown) and sets them (Enter/Space cycle; l, n, f: linear, nonlinear, free; Escape clears the selection).
 */

import { UnitState } from '../network_view_types';

export interface InputHost {
  /** The unit (global index) an event's target stands for, or -1. */
  unitOf(e: Event): number;
  /** The plane's coordinates of a pointer event. */
  planePoint(e: PointerEvent): [number, number];
  unitsInRect(x0: number, y0: number, x1: number, y1: number): number[];
  /** The unit to focus for a navigation key from unit ``i`` (null: the key does not navigate). */
  neighbour(i: number, key: string, ctrl: boolean): number | null;
  focusUnit(i: number, focus?: boolean): void;
  cycle(i: number): void;
  setUnits(units: number[], state: UnitState): void;
  readonly selection: Set<number>;
  setSelection(units: number[]): void;
  setHover(i: number): void;
  showBand(rect: { x: number; y: number; w: number; h: number } | null): void;
  announce(text: string): void;
}

export class UnitInput {
  private drag: { x0: number; y0: number; x1: number; y1: number; moved: boolean } | null = null;
  private suppressClick = false;

  constructor(
    private readonly host: InputHost,
    private readonly stage: HTMLElement,
    unitLayer: HTMLElement,
    listen: (target: EventTarget, type: string, fn: (e: Event) => void) => void
  ) {
    listen(stage, 'pointerdown', e => this.onPointerDown(e as PointerEvent));
    listen(stage, 'pointermove', e => this.onPointerMove(e as PointerEvent));
    listen(stage, 'pointerup', e => this.onPointerUp(e as PointerEvent));
    listen(stage, 'pointercancel', () => this.endDrag());
    listen(stage, 'pointerleave', () => this.host.setHover(-1));
    listen(stage, 'mousedown', e => {
      if ((e as MouseEvent).shiftKey) {
        e.stopPropagation(); // not a notebook cell selection
        e.preventDefault();
      }
    });
    listen(unitLayer, 'click', e => this.onClick(e as MouseEvent));
    listen(unitLayer, 'keydown', e => this.onKeyDown(e as KeyboardEvent));
  }

  toggleSelected(i: number): void {
    const next = new Set(this.host.selection);
    if (next.has(i)) {
      next.delete(i);
    } else {
      next.add(i);
    }
    this.host.setSelection(Array.from(next));
  }

  private onClick(e: MouseEvent): void {
    const i = this.host.unitOf(e);
    if (this.suppressClick) {
      this.suppressClick = false;
      return;
    }
    if (i < 0) {
      return;
    }
    this.host.focusUnit(i, false);
    if (e.shiftKey || e.ctrlKey || e.metaKey) {
      this.toggleSelected(i);
    } else {
      this.host.cycle(i);
    }
  }

  private onPointerDown(e: PointerEvent): void {
    if (!e.shiftKey || e.button !== 0) {
      return;
    }
    const [x, y] = this.host.planePoint(e);
    this.drag = { x0: x, y0: y, x1: x, y1: y, moved: false };
    this.stage.setPointerCapture(e.pointerId);
    e.preventDefault();
  }

  private onPointerMove(e: PointerEvent): void {
    if (this.drag) {
      const [x, y] = this.host.planePoint(e);
      const d = this.drag;
      d.x1 = x;
      d.y1 = y;
      d.moved = d.moved || Math.abs(x - d.x0) + Math.abs(y - d.y0) > 4;
      if (d.moved) {
        this.host.showBand({ x: Math.min(d.x0, x), y: Math.min(d.y0, y), w: Math.abs(x - d.x0),
          h: Math.abs(y - d.y0) });
      }
      return;
    }
    this.host.setHover(this.host.unitOf(e));
  }

  private onPointerUp(e: PointerEvent): void {
    const d = this.drag;
    if (!d) {
      return;
    }
    this.endDrag();
    if (d.moved) {
      this.suppressClick = true;
      window.setTimeout(() => (this.suppressClick = false), 0);
      const picked = this.host.unitsInRect(d.x0, d.y0, d.x1, d.y1);
      const current = Array.from(this.host.selection);
      this.host.setSelection(e.altKey ? current.filter(i => !picked.includes(i)) :
        Array.from(new Set([...current, ...picked])));
      this.host.announce(`${this.host.selection.size} units selected`);
    }
  }

  private endDrag(): void {
    this.drag = null;
    this.host.showBand(null);
  }

  private onKeyDown(e: KeyboardEvent): void {
    const i = this.host.unitOf(e);
    if (i < 0) {
      return;
    }
    const targets = () => (this.host.selection.size ? Array.from(this.host.selection) : [i]);
    let handled = true;
    switch (e.key) {
      case 'Enter':
      case ' ':
        if (e.shiftKey) {
          this.toggleSelected(i);
        } else {
          this.host.cycle(i);
        }
        break;
      case 'l':
      case 'L':
        this.host.setUnits(targets(), UnitState.LINEAR);
        break;
      case 'n':
      case 'N':
        this.host.setUnits(targets(), UnitState.NONLINEAR);
        break;
      case 'f':
      case 'F':
        this.host.setUnits(targets(), UnitState.FREE);
        break;
      case 'Escape':
        this.host.setSelection([]);
        break;
      default: {
        const next = this.host.neighbour(i, e.key, e.ctrlKey);
        if (next === null) {
          handled = false;
        } else {
          this.host.focusUnit(next);
        }
      }
    }
    if (handled) {
      e.preventDefault();
      e.stopPropagation();
    }
  }
}
