/**
 * NetworkView's front end (mirror of nonlin_explorer/ui/network_view.py), loaded by anywidget.
 *
 * Painting and interaction are split: one canvas paints every unit (cheap to repaint at 10+ Hz for
 * thousands of units), and an invisible layer holds one focusable element per unit (role "button",
 * aria-label "<layer> unit <i>: <state>", roving tabindex, Enter/Space cycles the state). Elements are
 * rebuilt only when the layout changes; a slope update touches the canvas and, only where a unit's state
 * word changed, its label.
 */

import type { AnyModel, RenderProps } from '@anywidget/types';
import { decode } from './codecs';
import { viridis } from './colormap';
import { Geometry, layoutNetwork, unitsInRect } from './geometry';
import {
  LayerInfo,
  NetworkViewModel,
  NetworkViewReply,
  NetworkViewRequest,
  UnitState
} from './network_view_types';
import { Channel } from './transport';

const SCALE = viridis();
const STATE_NAMES = ['free', 'forced linear', 'forced nonlinear'];
/** Word codes for labels: what a unit is now. */
const WORDS = ['nonlinear', 'linear', 'forced linear', 'forced nonlinear'];
/** A click the kernel has not applied after this long is rolled back (with a note). */
const PENDING_TIMEOUT_MS = 10000;

let instances = 0;

interface Theme {
  font: string;
  text: string;
  muted: string;
  band: string;
  skip: string;
  accent: string;
}

function cssVar(el: Element, name: string, fallback: string): string {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      el.className = v;
    } else {
      el.setAttribute(k, v);
    }
  }
  if (text !== undefined) {
    el.textContent = text;
  }
  return el;
}

function fmt(v: number, digits = 3): string {
  return Number.isFinite(v) ? v.toFixed(digits) : 'n/a';
}

interface LayerRow {
  nonlinear: HTMLElement;
  forced: HTMLElement;
}

export class NetworkView {
  private readonly id = ++instances;
  private readonly root: HTMLDivElement;
  private readonly titleEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly countEl: HTMLElement;
  private readonly stage: HTMLDivElement;
  private readonly plane: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly unitLayer: HTMLDivElement;
  private readonly band: HTMLDivElement;
  private readonly tooltip: HTMLDivElement;
  private readonly selectionBar: HTMLDivElement;
  private readonly selectionText: HTMLElement;
  private readonly tableBody: HTMLTableSectionElement;
  private readonly details: HTMLDetailsElement;
  private readonly live: HTMLElement;
  private readonly message: HTMLElement;
  private readonly resize: ResizeObserver;
  private readonly cleanups: (() => void)[] = [];

  private layers: LayerInfo[] = [];
  private slopes: Float32Array<ArrayBufferLike> = new Float32Array(0);
  private states: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  private acts: Float32Array<ArrayBufferLike> = new Float32Array(0);
  private words = new Uint8Array(0);
  /** Layer index and index within the layer, per unit (from the layout, before any geometry). */
  private layerOf = new Uint16Array(0);
  private unitOf = new Uint32Array(0);
  private unitEls: HTMLElement[] = [];
  private layerRows: LayerRow[] = [];
  private geom: Geometry | null = null;
  private labels: { text: string; x: number }[] = [];
  private theme: Theme | null = null;
  private focusIndex = 0;
  private hover = -1;
  private selection = new Set<number>();
  /** Clicks shown before the kernel applied them: unit -> the state asked for, when, and the request. */
  private pending = new Map<number, { state: number; t: number; id: string }>();
  private drag: { x0: number; y0: number; x1: number; y1: number; moved: boolean } | null = null;
  private suppressClick = false;
  private frame = 0;
  private statesSeq = 0;
  private paintedStatesSeq = 0;
  private lastSize = '';
  private messageTimer = 0;
  private readonly channel: Channel;
  private pendingTimer = 0;

  constructor(
    private readonly model: AnyModel<NetworkViewModel>,
    host: HTMLElement
  ) {
    this.channel = new Channel(model);
    this.root = h('div', { class: 'ne-network', 'data-lm-suppress-shortcuts': 'true' });
    const header = h('div', { class: 'ne-header' });
    this.titleEl = h('span', { class: 'ne-title' });
    this.statusEl = h('span', { class: 'ne-status' });
    this.countEl = h('span', { class: 'ne-count', 'aria-live': 'off' });
    const tools = h('span', { class: 'ne-net-tools', role: 'toolbar', 'aria-label': 'network: export' });
    tools.append(
      this.button('PNG', 'Save the network as PNG', () => this.exportPNG(), 'network: save PNG'),
      this.button('SVG', 'Save the network as SVG', () => this.exportSVG(), 'network: save SVG')
    );
    header.append(this.titleEl, this.statusEl, this.countEl, this.legend(), tools);
    this.stage = h('div', { class: 'ne-stage' });
    this.plane = h('div', { class: 'ne-plane' });
    this.canvas = h('canvas', { class: 'ne-canvas', 'aria-hidden': 'true' });
    const ctx = this.canvas.getContext('2d');
    if (!ctx) {
      throw new Error('NetworkView: no 2D canvas context');
    }
    this.ctx = ctx;
    this.unitLayer = h('div', { class: 'ne-units', role: 'group', 'aria-roledescription': 'network' });
    this.band = h('div', { class: 'ne-band', hidden: '' });
    this.tooltip = h('div', { class: 'ne-tooltip', role: 'tooltip', id: `ne-tooltip-${this.id}`, hidden: '' });
    this.plane.append(this.canvas, this.unitLayer, this.band);
    this.stage.append(this.plane);

    this.selectionBar = h('div', { class: 'ne-selection', role: 'toolbar', hidden: '' });
    this.selectionText = h('span', { class: 'ne-selection-text' });
    this.selectionBar.append(
      this.selectionText,
      this.button('Linear', 'Force the selected units linear', () => this.applySelection(UnitState.LINEAR)),
      this.button('Nonlinear', 'Force the selected units nonlinear', () =>
        this.applySelection(UnitState.NONLINEAR)
      ),
      this.button('Release', 'Make the selected units free again', () => this.applySelection(UnitState.FREE)),
      this.button('Clear selection', 'Clear the selection', () => this.setSelection([]))
    );

    this.details = h('details', { class: 'ne-layers' });
    const summary = h('summary', {}, 'Layers');
    const table = h('table', { class: 'ne-layer-table' });
    const head = h('thead');
    const headRow = h('tr');
    for (const c of ['Layer', 'Units', 'Nonlinear', 'Forced (lin/nonlin)', 'Set all units']) {
      headRow.append(h('th', { scope: 'col' }, c));
    }
    head.append(headRow);
    this.tableBody = h('tbody');
    table.append(head, this.tableBody);
    this.details.append(summary, table);

    this.message = h('div', { class: 'ne-message', role: 'status', hidden: '' });
    this.live = h('div', { class: 'ne-live', 'aria-live': 'polite' });
    const help = h(
      'div',
      { class: 'ne-help' },
      'Click a unit (or Enter/Space) to cycle free \u2192 forced linear \u2192 forced nonlinear; ' +
        'shift-drag to select several; arrow keys move.'
    );
    this.root.append(header, this.stage, this.selectionBar, this.details, help, this.message, this.live, this.tooltip);
    host.append(this.root);

    this.listen(this.stage, 'pointerdown', e => this.onPointerDown(e as PointerEvent));
    this.listen(this.stage, 'pointermove', e => this.onPointerMove(e as PointerEvent));
    this.listen(this.stage, 'pointerup', e => this.onPointerUp(e as PointerEvent));
    this.listen(this.stage, 'pointercancel', () => this.endDrag());
    this.listen(this.stage, 'pointerleave', () => this.setHover(-1));
    this.listen(this.stage, 'mousedown', e => {
      if ((e as MouseEvent).shiftKey) {
        e.stopPropagation(); // not a notebook cell selection
        e.preventDefault();
      }
    });
    this.listen(this.unitLayer, 'click', e => this.onClick(e as MouseEvent));
    this.listen(this.unitLayer, 'keydown', e => this.onKeyDown(e as KeyboardEvent));
    this.listen(this.unitLayer, 'focusin', e => this.onFocus(e as FocusEvent));
    this.listen(this.unitLayer, 'focusout', () => this.showTooltip(this.hover));

    const on = (event: string, fn: () => void) => {
      model.on(event, fn);
      this.cleanups.push(() => model.off(event, fn));
    };
    on('change:layers', () => this.rebuild());
    on('change:blocks', () => this.rebuild());
    on('change:max_rows', () => this.rebuild());
    on('change:slopes', () => this.readSlopes());
    on('change:states', () => this.readStates());
    on('change:activations', () => this.readActivations());
    on('change:tol', () => this.readSlopes());
    on('change:title', () => this.updateHeader());
    on('change:status', () => this.updateHeader());
    on('change:step', () => this.updateHeader());
    const onMsg = (msg: NetworkViewReply) => this.onReply(msg);
    model.on('msg:custom', onMsg);
    this.cleanups.push(() => model.off('msg:custom', onMsg));

    this.resize = new ResizeObserver(() => this.relayoutIfResized());
    this.resize.observe(this.stage);
    // A theme switch changes the colours the canvas reads from CSS variables.
    const theme = new MutationObserver(() => this.relayout());
    theme.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-name', 'data-jp-theme-light'] });
    this.cleanups.push(() => theme.disconnect());
    this.rebuild();
  }

  /** Re-read the theme's colours (the host changed its theme). */
  refreshTheme(): void {
    this.relayout();
  }

  /** The painted network as a PNG data URL (for snapshots); '' before the first paint. */
  pngDataUrl(): string {
    return this.geom ? this.canvas.toDataURL('image/png') : '';
  }

  /** The network as SVG: one square per unit in its colour, forced states marked, layer labels. */
  svg(): string {
    const g = this.geom;
    const theme = this.theme;
    if (!g || !theme) {
      return '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"/>';
    }
    const parts: string[] = [];
    const s = g.cell;
    const inset = g.inset;
    const n = Math.min(this.unitEls.length, g.x.length);
    for (let i = 0; i < n; i++) {
      const level = SCALE.level(this.shownSlope(i));
      const state = this.stateOf(i);
      const ring = state !== UnitState.FREE ? ` stroke="${SCALE.ink[level]}" stroke-width="1.5"` : '';
      parts.push(`<rect x="${g.x[i] + inset}" y="${g.y[i] + inset}" width="${s - 2 * inset}" height="${s - 2 * inset}" ` +
        `fill="${SCALE.fill[level]}"${ring}><title>${this.labelOf(i)}</title></rect>`);
    }
    for (const l of this.labels) {
      parts.push(`<text x="${l.x}" y="${g.labelTop + 10}" font-size="12" text-anchor="middle" fill="${theme.muted}" ` +
        `font-family="sans-serif">${l.text.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`);
    }
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${g.width}" height="${g.height}" ` +
      `viewBox="0 0 ${g.width} ${g.height}">${parts.join('')}</svg>`;
  }

  private save(name: string, blob: Blob): void {
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 5000);
  }

  exportPNG(): void {
    const [head, body] = this.canvas.toDataURL('image/png').split(',', 2);
    const bytes = Uint8Array.from(atob(body), c => c.charCodeAt(0));
    this.save('nonlin_explorer-network.png', new Blob([bytes], { type: head.slice(5).split(';')[0] }));
  }

  exportSVG(): void {
    this.save('nonlin_explorer-network.svg', new Blob([this.svg()], { type: 'image/svg+xml' }));
  }

  dispose(): void {
    this.cleanups.forEach(fn => fn());
    this.resize.disconnect();
    cancelAnimationFrame(this.frame);
    window.clearTimeout(this.messageTimer);
    window.clearInterval(this.pendingTimer);
    this.root.remove();
  }

  // -- model state ---------------------------------------------------------------------------------

  private rebuild(): void {
    this.layers = this.model.get('layers') ?? [];
    const n = this.layers.reduce((a, l) => a + l.units, 0);
    this.words = new Uint8Array(n).fill(255);
    this.layerOf = new Uint16Array(n);
    this.unitOf = new Uint32Array(n);
    this.layers.forEach((layer, li) => {
      for (let u = 0; u < layer.units; u++) {
        this.layerOf[layer.offset + u] = li;
        this.unitOf[layer.offset + u] = u;
      }
    });
    this.selection.clear();
    this.pending.clear();
    this.focusIndex = Math.min(this.focusIndex, Math.max(0, n - 1));
    this.buildUnits();
    this.buildTable();
    this.updateHeader();
    this.readSlopes(false);
    this.readStates(false);
    this.readActivations();
    this.relayout();
  }

  private readSlopes(schedule = true): void {
    this.slopes = decode(this.model.get('slopes'), 'float32');
    this.updateWords();
    if (schedule) {
      this.schedule();
    }
  }

  private readStates(schedule = true): void {
    this.states = decode(this.model.get('states'), 'uint8');
    this.statesSeq++;
    for (const [i, p] of this.pending) {
      if (this.states[i] === p.state) {
        this.pending.delete(i); // the kernel applied it: the optimistic picture was right
      }
    }
    this.expirePending();
    this.updateWords();
    if (schedule) {
      this.schedule();
    }
  }

  private readActivations(): void {
    this.acts = decode(this.model.get('activations'), 'float32');
    if (this.hover >= 0 || this.tooltipUnit() >= 0) {
      this.showTooltip(this.tooltipUnit());
    }
  }

  /** Roll back clicks the kernel has not applied in time (it keeps its own state; say so). */
  private expirePending(): void {
    const now = performance.now();
    let expired = 0;
    for (const [i, p] of this.pending) {
      if (now - p.t > PENDING_TIMEOUT_MS) {
        this.pending.delete(i);
        expired++;
      }
    }
    if (expired) {
      this.showMessage(`${expired} change${expired === 1 ? ' was' : 's were'} not applied by the kernel in ` +
        `${PENDING_TIMEOUT_MS / 1000} s: showing its state again`);
      this.updateWords();
      this.schedule();
    }
  }

  private onReply(msg: NetworkViewReply): void {
    if (!msg || !this.channel.owns(msg.id)) {
      if (msg && msg.type === 'error' && (msg.id === null || msg.id === undefined)) {
        this.showMessage(msg.message);
      }
      return;
    }
    const ms = this.channel.settle(msg.id);
    this.root.dataset.ackMs = ms.toFixed(1);
    this.root.dataset.acks = String(Number(this.root.dataset.acks ?? 0) + 1);
    if (msg.type === 'error') {
      let undone = 0;
      for (const [i, p] of this.pending) {
        if (p.id === msg.id) {
          this.pending.delete(i);
          undone++;
        }
      }
      const restored = undone ? ` (${undone} unit${undone === 1 ? '' : 's'} restored)` : '';
      this.showMessage(`The kernel refused the change${restored}: ${msg.message}`);
      this.updateWords();
      this.schedule();
    }
  }

  /** A unit's state as the page shows it: the one asked for while a click is pending, else the kernel's. */
  private stateOf(i: number): number {
    return this.pending.get(i)?.state ?? this.states[i] ?? UnitState.FREE;
  }

  private unitCount(): number {
    return this.unitEls.length;
  }

  private wordOf(i: number): number {
    const s = this.stateOf(i);
    if (s === UnitState.LINEAR) {
      return 2;
    }
    if (s === UnitState.NONLINEAR) {
      return 3;
    }
    const tol = this.model.get('tol') ?? 1e-3;
    return 1 - (this.slopes[i] ?? 0) <= tol ? 1 : 0;
  }

  private labelOf(i: number): string {
    return `${this.layers[this.layerOf[i]].name} unit ${this.unitOf[i]}: ${WORDS[this.wordOf(i)]}`;
  }

  /** Refresh aria-labels where a unit's state word changed (rare: not on every slope update). */
  private updateWords(): void {
    const n = Math.min(this.unitCount(), this.words.length);
    const shown = this.tooltip.hidden ? -1 : Number(this.tooltip.dataset.unit ?? -1);
    let tooltipStale = false;
    for (let i = 0; i < n; i++) {
      const w = this.wordOf(i);
      if (w !== this.words[i]) {
        this.words[i] = w;
        this.unitEls[i].setAttribute('aria-label', this.labelOf(i));
        tooltipStale = tooltipStale || i === shown;
      }
    }
    if (tooltipStale) {
      this.showTooltip(shown); // the tooltip follows every change of its unit
    }
  }

  // -- DOM -----------------------------------------------------------------------------------------

  private listen(target: EventTarget, type: string, fn: (e: Event) => void): void {
    target.addEventListener(type, fn);
    this.cleanups.push(() => target.removeEventListener(type, fn));
  }

  private button(label: string, title: string, onClick: () => void, aria?: string): HTMLButtonElement {
    const b = h('button', { class: 'ne-button', type: 'button', title }, label);
    if (aria) {
      b.setAttribute('aria-label', aria);
    }
    b.addEventListener('click', onClick);
    return b;
  }

  private legend(): HTMLElement {
    const legend = h('span', { class: 'ne-legend' });
    const scale = h('span', { class: 'ne-legend-scale' });
    scale.append(
      h('span', { class: 'ne-legend-end' }, '\u03b1 0 ReLU'),
      h('span', { class: 'ne-legend-bar', style: `background: ${SCALE.gradient}`, role: 'img',
        'aria-label': 'colour scale: alpha from 0 (ReLU, nonlinear) to 1 (linear)' }),
      h('span', { class: 'ne-legend-end' }, '1 linear')
    );
    const marks = h('span', { class: 'ne-legend-marks' });
    const svg = (path: string, ring: boolean) =>
      `<svg viewBox="0 0 14 14" width="14" height="14" aria-hidden="true"><rect x="0.5" y="0.5" width="13" ` +
      `height="13" fill="${SCALE.fill[128]}" stroke="${ring ? '#fff' : 'none'}"/>` +
      (path ? `<path d="${path}" stroke="#fff" stroke-width="1.6" fill="none"/>` : '') +
      '</svg>';
    for (const [name, glyph] of [
      ['free', svg('', false)],
      ['forced linear', svg('M3 11 L11 3', true)],
      ['forced nonlinear', svg('M3 9 L7 9 L11 3', true)]
    ]) {
      const item = h('span', { class: 'ne-legend-mark' });
      item.innerHTML = glyph;
      item.append(document.createTextNode(` ${name}`));
      marks.append(item);
    }
    legend.append(scale, marks);
    return legend;
  }

  private buildUnits(): void {
    this.unitLayer.replaceChildren();
    this.unitEls = [];
    const frag = document.createDocumentFragment();
    this.layers.forEach((layer, li) => {
      const group = h('div', { class: 'ne-layer', role: 'group', 'aria-label': `layer ${layer.name}, ${layer.units} units` });
      group.dataset.layer = String(li);
      for (let u = 0; u < layer.units; u++) {
        const el = h('div', { class: 'ne-unit', role: 'button', tabindex: '-1' });
        el.dataset.i = String(layer.offset + u);
        el.setAttribute('aria-describedby', this.tooltip.id);
        group.append(el);
        this.unitEls.push(el);
      }
      frag.append(group);
    });
    this.unitLayer.append(frag);
    if (this.unitEls.length) {
      this.unitEls[this.focusIndex].tabIndex = 0;
    }
  }

  private buildTable(): void {
    this.tableBody.replaceChildren();
    this.layerRows = [];
    this.layers.forEach((layer, li) => {
      const tr = h('tr');
      const nonlinear = h('td', { class: 'ne-num' });
      const forced = h('td', { class: 'ne-num' });
      const actions = h('td', { class: 'ne-actions' });
      actions.append(
        this.button('Linear', `Force every unit of ${layer.name} linear`, () => this.setLayer(li, UnitState.LINEAR),
          `${layer.name}: all linear`),
        this.button('Nonlinear', `Force every unit of ${layer.name} nonlinear`,
          () => this.setLayer(li, UnitState.NONLINEAR), `${layer.name}: all nonlinear`),
        this.button('Release', `Make every unit of ${layer.name} free`, () => this.setLayer(li, UnitState.FREE),
          `${layer.name}: release all`)
      );
      tr.append(h('th', { scope: 'row' }, layer.name), h('td', { class: 'ne-num' }, String(layer.units)), nonlinear,
        forced, actions);
      this.tableBody.append(tr);
      this.layerRows.push({ nonlinear, forced });
    });
    this.details.open = this.layers.length <= 8;
  }

  private updateHeader(): void {
    this.titleEl.textContent = this.model.get('title') || 'Network';
    const status = this.model.get('status') || 'model';
    this.statusEl.textContent = status === 'model' ? '' : `${status} \u00b7 step ${this.model.get('step') ?? 0}`;
    this.root.dataset.status = status;
  }

  private updateCounts(): void {
    let total = 0;
    let nonlinear = 0;
    this.layers.forEach((layer, li) => {
      let nl = 0;
      let fl = 0;
      let fn = 0;
      for (let i = layer.offset; i < layer.offset + layer.units && i < this.words.length; i++) {
        const w = this.words[i];
        nl += w === 0 || w === 3 ? 1 : 0;
        fl += w === 2 ? 1 : 0;
        fn += w === 3 ? 1 : 0;
      }
      total += layer.units;
      nonlinear += nl;
      const row = this.layerRows[li];
      if (row) {
        const a = String(nl);
        const b = `${fl} / ${fn}`;
        if (row.nonlinear.textContent !== a) {
          row.nonlinear.textContent = a;
        }
        if (row.forced.textContent !== b) {
          row.forced.textContent = b;
        }
      }
    });
    const text = `${nonlinear} of ${total} units nonlinear`;
    if (this.countEl.textContent !== text) {
      this.countEl.textContent = text;
    }
  }

  /** The slope painted for a unit: a forced state shows its slope at once, before the kernel confirms it. */
  private shownSlope(i: number): number {
    const p = this.pending.get(i);
    if (p && p.state === UnitState.LINEAR) {
      return 1;
    }
    if (p && p.state === UnitState.NONLINEAR) {
      return 0;
    }
    return this.slopes[i] ?? 0;
  }

  // -- layout and painting -------------------------------------------------------------------------

  private fillMode(): boolean {
    return this.root.closest('.ne-present-panel') !== null;
  }

  private relayoutIfResized(): void {
    const size = `${this.stage.clientWidth}x${this.fillMode() ? this.stage.clientHeight : 0}`;
    if (size !== this.lastSize) {
      this.relayout();
    }
  }

  private relayout(): void {
    const fill = this.fillMode();
    this.root.classList.toggle('ne-fill', fill);
    const width = this.stage.clientWidth || this.root.clientWidth || 800;
    const height = fill ? this.stage.clientHeight : 0;
    this.lastSize = `${this.stage.clientWidth}x${height}`;
    const g = layoutNetwork(this.layers, this.model.get('blocks') ?? [], {
      width,
      height,
      maxRows: this.model.get('max_rows') ?? 0,
      maxCell: fill ? 64 : 28
    });
    this.geom = g;
    this.theme = {
      font: cssVar(this.root, '--jp-ui-font-family', 'system-ui, sans-serif'),
      text: cssVar(this.root, '--jp-ui-font-color1', '#222'),
      muted: cssVar(this.root, '--jp-ui-font-color2', '#666'),
      band: cssVar(this.root, '--jp-layout-color2', 'rgba(127,127,127,0.12)'),
      skip: cssVar(this.root, '--jp-ui-font-color2', '#888'),
      accent: cssVar(this.root, '--jp-brand-color1', '#1976d2')
    };
    this.plane.style.width = `${g.width}px`;
    this.plane.style.height = `${g.height}px`;
    if (!fill) {
      this.stage.style.height = `${g.height + (g.width > width ? 14 : 0)}px`;
    } else {
      this.stage.style.height = '';
    }
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(g.width * dpr);
    this.canvas.height = Math.round(g.height * dpr);
    this.canvas.style.width = `${g.width}px`;
    this.canvas.style.height = `${g.height}px`;
    const s = g.cell;
    for (let i = 0; i < this.unitEls.length; i++) {
      this.unitEls[i].style.cssText = `left:${g.x[i]}px;top:${g.y[i]}px;width:${s}px;height:${s}px`;
    }
    // Layer labels under the columns, where they fit.
    this.ctx.font = `12px ${this.theme.font}`;
    this.labels = [];
    this.layers.forEach((layer, li) => {
      const room = g.layerRight[li] - g.layerLeft[li] + s * 0.6 - 4; // the column and half of each gap
      let text = layer.name;
      if (this.ctx.measureText(text).width > room) {
        text = layer.name.split('.').slice(-1)[0];
      }
      if (this.ctx.measureText(text).width <= room) {
        this.labels.push({ text, x: (g.layerLeft[li] + g.layerRight[li]) / 2 });
      }
    });
    this.paint();
  }

  private schedule(): void {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.paint();
      });
    }
  }

  private paint(): void {
    const g = this.geom;
    const theme = this.theme;
    if (!g || !theme) {
      return;
    }
    const t0 = performance.now();
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, g.width, g.height);

    // Residual blocks: shaded bands and skip arcs.
    ctx.fillStyle = theme.band;
    for (const b of g.blockBands) {
      ctx.fillRect(b.left, b.top, b.right - b.left, b.bottom - b.top);
    }
    ctx.lineWidth = 1.2;
    ctx.strokeStyle = theme.skip;
    for (const k of g.skips) {
      // A low arch over the block, from the column before it to the gate after the addition.
      ctx.setLineDash(k.projection ? [3, 2] : []);
      const rise = Math.max(8, Math.min(24, 0.4 * (k.x1 - k.x0)));
      const cy = Math.max(2, Math.min(k.y0, k.y1) - 4 - 2 * rise);
      ctx.beginPath();
      ctx.moveTo(k.x0, k.y0 - 4);
      ctx.quadraticCurveTo((k.x0 + k.x1) / 2, cy, k.x1, k.y1 - 4);
      ctx.stroke();
    }
    ctx.setLineDash([]);

    // Units, coloured by alpha; state glyphs collected into one path per ink.
    const s = g.cell;
    const inset = g.inset;
    const n = Math.min(this.unitEls.length, g.x.length);
    const inks: Record<string, Path2D> = {};
    const glyph = s >= 9;
    const m = Math.max(2, s * 0.22);
    for (let i = 0; i < n; i++) {
      const level = SCALE.level(this.shownSlope(i));
      ctx.fillStyle = SCALE.fill[level];
      const x = g.x[i];
      const y = g.y[i];
      ctx.fillRect(x + inset, y + inset, s - 2 * inset, s - 2 * inset);
      const state = this.stateOf(i);
      if (state !== UnitState.FREE) {
        const ink = SCALE.ink[level];
        const p = inks[ink] ?? (inks[ink] = new Path2D());
        p.rect(x + inset + 0.75, y + inset + 0.75, s - 2 * inset - 1.5, s - 2 * inset - 1.5);
        if (glyph && state === UnitState.LINEAR) {
          p.moveTo(x + m, y + s - m);
          p.lineTo(x + s - m, y + m);
        } else if (glyph) {
          p.moveTo(x + m, y + s - m - s * 0.12);
          p.lineTo(x + s / 2, y + s - m - s * 0.12);
          p.lineTo(x + s - m, y + m);
        } else if (state === UnitState.NONLINEAR) {
          p.rect(x + s / 2 - 0.5, y + s / 2 - 0.5, 1, 1);
        }
      }
    }
    ctx.lineWidth = glyph ? Math.max(1.2, s / 10) : 1;
    for (const [ink, p] of Object.entries(inks)) {
      ctx.strokeStyle = ink;
      ctx.stroke(p);
    }

    // Selection, pending toggles, hover.
    if (this.selection.size) {
      const p = new Path2D();
      for (const i of this.selection) {
        p.rect(g.x[i] - 0.5, g.y[i] - 0.5, s + 1, s + 1);
      }
      ctx.strokeStyle = theme.accent;
      ctx.lineWidth = 2;
      ctx.stroke(p);
    }
    if (this.pending.size) {
      ctx.setLineDash([2, 2]);
      ctx.strokeStyle = theme.text;
      ctx.lineWidth = 1;
      for (const i of this.pending.keys()) {
        ctx.strokeRect(g.x[i] - 1, g.y[i] - 1, s + 2, s + 2);
      }
      ctx.setLineDash([]);
    }
    if (this.hover >= 0 && this.hover < n) {
      ctx.strokeStyle = theme.text;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(g.x[this.hover] - 1, g.y[this.hover] - 1, s + 2, s + 2);
    }

    // Layer labels.
    ctx.fillStyle = theme.muted;
    ctx.font = `12px ${theme.font}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const l of this.labels) {
      ctx.fillText(l.text, l.x, g.labelTop);
    }

    this.updateCounts();
    if (this.paintedStatesSeq !== this.statesSeq) {
      this.paintedStatesSeq = this.statesSeq;
      this.root.dataset.statesPainted = String(this.statesSeq);
    }
    this.root.dataset.paints = String(Number(this.root.dataset.paints ?? 0) + 1);
    // For benchmarks: how long painting took (ms), last and worst.
    const ms = performance.now() - t0;
    this.root.dataset.paintMs = ms.toFixed(1);
    this.root.dataset.maxPaintMs = Math.max(ms, Number(this.root.dataset.maxPaintMs ?? 0)).toFixed(1);
  }

  // -- interaction ---------------------------------------------------------------------------------

  private unitFromEvent(e: Event): number {
    const t = e.target as HTMLElement | null;
    const i = t && t.dataset ? t.dataset.i : undefined;
    return i === undefined ? -1 : Number(i);
  }

  private send(request: NetworkViewRequest): string {
    return this.channel.send(request as unknown as { type: string });
  }

  /** Ask the kernel for new unit states and show them at once; the kernel's answer confirms or rolls back. */
  private requestStates(targets: Map<number, number[] | null>, state: UnitState): void {
    if (!targets.size) {
      return;
    }
    const id = this.send({
      type: 'set_state',
      targets: Array.from(targets, ([layer, units]) => ({ layer, units })),
      state
    });
    const now = performance.now();
    for (const [li, units] of targets) {
      const layer = this.layers[li];
      for (const u of units ?? Array.from({ length: layer.units }, (_, k) => k)) {
        const i = layer.offset + u;
        if (this.states[i] === state) {
          this.pending.delete(i); // already so in the kernel: nothing to wait for
        } else {
          this.pending.set(i, { state, t: now, id });
        }
      }
    }
    if (!this.pendingTimer) {
      this.pendingTimer = window.setInterval(() => {
        this.expirePending();
        if (!this.pending.size) {
          window.clearInterval(this.pendingTimer);
          this.pendingTimer = 0;
        }
      }, 1000);
    }
    this.updateWords();
    this.schedule();
  }

  private cycle(i: number): void {
    const g = this.geom;
    if (!g) {
      return;
    }
    const current = this.stateOf(i);
    this.setUnits([i], ((current + 1) % 3) as UnitState);
  }

  private setUnits(units: number[], state: UnitState): void {
    const g = this.geom;
    if (!g) {
      return;
    }
    const targets = new Map<number, number[]>();
    for (const i of units) {
      const li = this.layerOf[i];
      (targets.get(li) ?? targets.set(li, []).get(li)!).push(this.unitOf[i]);
    }
    this.requestStates(targets, state);
  }

  private setLayer(li: number, state: UnitState): void {
    this.requestStates(new Map([[li, null]]), state);
  }

  private applySelection(state: UnitState): void {
    this.setUnits(Array.from(this.selection), state);
  }

  private setSelection(units: number[]): void {
    this.selection = new Set(units);
    this.selectionBar.hidden = this.selection.size === 0;
    if (this.selection.size) {
      const layers = new Set(units.map(i => this.layerOf[i]));
      this.selectionText.textContent = `${this.selection.size} unit${this.selection.size === 1 ? '' : 's'} ` +
        `selected in ${layers.size} layer${layers.size === 1 ? '' : 's'}:`;
    }
    this.schedule();
  }

  private onClick(e: MouseEvent): void {
    const i = this.unitFromEvent(e);
    if (this.suppressClick) {
      this.suppressClick = false;
      return;
    }
    if (i < 0) {
      return;
    }
    this.focusUnit(i, false);
    if (e.shiftKey || e.ctrlKey || e.metaKey) {
      this.toggleSelected(i);
    } else {
      this.cycle(i);
    }
  }

  /** Add unit i to the selection, or take it out if it is in. */
  private toggleSelected(i: number): void {
    const next = new Set(this.selection);
    if (next.has(i)) {
      next.delete(i);
    } else {
      next.add(i);
    }
    this.setSelection(Array.from(next));
  }

  private planePoint(e: PointerEvent): [number, number] {
    const r = this.plane.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private onPointerDown(e: PointerEvent): void {
    if (!e.shiftKey || e.button !== 0) {
      return;
    }
    const [x, y] = this.planePoint(e);
    this.drag = { x0: x, y0: y, x1: x, y1: y, moved: false };
    this.stage.setPointerCapture(e.pointerId);
    e.preventDefault();
  }

  private onPointerMove(e: PointerEvent): void {
    if (this.drag) {
      const [x, y] = this.planePoint(e);
      const d = this.drag;
      d.x1 = x;
      d.y1 = y;
      d.moved = d.moved || Math.abs(x - d.x0) + Math.abs(y - d.y0) > 4;
      if (d.moved) {
        this.band.hidden = false;
        this.band.style.cssText = `left:${Math.min(d.x0, x)}px;top:${Math.min(d.y0, y)}px;` +
          `width:${Math.abs(x - d.x0)}px;height:${Math.abs(y - d.y0)}px`;
      }
      return;
    }
    this.setHover(this.unitFromEvent(e));
  }

  private onPointerUp(e: PointerEvent): void {
    const d = this.drag;
    if (!d) {
      return;
    }
    this.endDrag();
    if (d.moved && this.geom) {
      this.suppressClick = true;
      window.setTimeout(() => (this.suppressClick = false), 0);
      const picked = unitsInRect(this.geom, d.x0, d.y0, d.x1, d.y1);
      this.setSelection(e.altKey ? Array.from(this.selection).filter(i => !picked.includes(i)) :
        Array.from(new Set([...this.selection, ...picked])));
      this.live.textContent = `${this.selection.size} units selected`;
    }
  }

  private endDrag(): void {
    this.drag = null;
    this.band.hidden = true;
  }

  private setHover(i: number): void {
    if (i !== this.hover) {
      this.hover = i;
      this.showTooltip(i >= 0 ? i : this.tooltipUnit());
      this.schedule();
    }
  }

  private tooltipUnit(): number {
    const active = document.activeElement as HTMLElement | null;
    if (active && active.parentElement?.parentElement === this.unitLayer && active.dataset.i !== undefined) {
      return Number(active.dataset.i);
    }
    return -1;
  }

  private showTooltip(i: number): void {
    const g = this.geom;
    if (i < 0 || !g || i >= this.unitEls.length) {
      this.tooltip.hidden = true;
      return;
    }
    const layer = this.layers[this.layerOf[i]];
    const state = this.stateOf(i);
    const alpha = this.shownSlope(i);
    this.tooltip.dataset.unit = String(i);
    this.tooltip.replaceChildren(
      h('strong', {}, `${layer.name} \u00b7 unit ${this.unitOf[i]}`),
      h('div', {}, `alpha ${fmt(alpha)} (${WORDS[this.wordOf(i) === 1 || this.wordOf(i) === 2 ? 1 : 0]})`),
      h('div', {}, `mean activation ${fmt(this.acts[i])}`),
      h('div', {}, `state: ${STATE_NAMES[state] ?? state}`)
    );
    this.tooltip.hidden = false;
    const cell = this.unitEls[i].getBoundingClientRect();
    const root = this.root.getBoundingClientRect();
    const tw = this.tooltip.offsetWidth;
    const th = this.tooltip.offsetHeight;
    let left = cell.right - root.left + 6;
    if (left + tw > root.width) {
      left = Math.max(0, cell.left - root.left - tw - 6);
    }
    let top = cell.top - root.top - th - 4;
    if (top < 0) {
      top = cell.bottom - root.top + 4;
    }
    this.tooltip.style.left = `${left}px`;
    this.tooltip.style.top = `${top}px`;
  }

  private focusUnit(i: number, focus = true): void {
    if (i < 0 || i >= this.unitEls.length) {
      return;
    }
    if (this.unitEls[this.focusIndex]) {
      this.unitEls[this.focusIndex].tabIndex = -1;
    }
    this.focusIndex = i;
    const el = this.unitEls[i];
    el.tabIndex = 0;
    if (focus) {
      el.focus({ preventScroll: false });
    }
  }

  private onFocus(e: FocusEvent): void {
    const i = this.unitFromEvent(e);
    if (i >= 0) {
      this.focusUnit(i, false);
      this.showTooltip(i);
    }
  }

  private onKeyDown(e: KeyboardEvent): void {
    const i = this.unitFromEvent(e);
    const g = this.geom;
    if (i < 0 || !g) {
      return;
    }
    const li = this.layerOf[i];
    const u = this.unitOf[i];
    const layer = this.layers[li];
    const rows = g.layerRows[li];
    const go = (layerIndex: number, unit: number) => {
      const l = this.layers[Math.max(0, Math.min(this.layers.length - 1, layerIndex))];
      this.focusUnit(l.offset + Math.max(0, Math.min(l.units - 1, unit)));
    };
    let handled = true;
    switch (e.key) {
      case 'Enter':
      case ' ':
        if (e.shiftKey) {
          this.toggleSelected(i);
        } else {
          this.cycle(i);
        }
        break;
      case 'ArrowUp':
        go(li, u - 1);
        break;
      case 'ArrowDown':
        go(li, u + 1);
        break;
      case 'ArrowLeft':
        if (u >= rows) {
          go(li, u - rows);
        } else {
          go(li - 1, u);
        }
        break;
      case 'ArrowRight':
        if (u + rows < layer.units) {
          go(li, u + rows);
        } else {
          go(li + 1, u);
        }
        break;
      case 'Home':
        go(e.ctrlKey ? 0 : li, 0);
        break;
      case 'End':
        go(e.ctrlKey ? this.layers.length - 1 : li, e.ctrlKey ? Infinity : layer.units - 1);
        break;
      case 'PageUp':
        go(li, u - 8);
        break;
      case 'PageDown':
        go(li, u + 8);
        break;
      case 'l':
      case 'L':
        this.setUnits(this.selection.size ? Array.from(this.selection) : [i], UnitState.LINEAR);
        break;
      case 'n':
      case 'N':
        this.setUnits(this.selection.size ? Array.from(this.selection) : [i], UnitState.NONLINEAR);
        break;
      case 'f':
      case 'F':
        this.setUnits(this.selection.size ? Array.from(this.selection) : [i], UnitState.FREE);
        break;
      case 'Escape':
        this.setSelection([]);
        break;
      default:
        handled = false;
    }
    if (handled) {
      e.preventDefault();
      e.stopPropagation();
    }
  }

  private showMessage(text: string): void {
    this.message.textContent = text;
    this.message.hidden = false;
    window.clearTimeout(this.messageTimer);
    this.messageTimer = window.setTimeout(() => (this.message.hidden = true), 8000);
  }
}

function render({ model, el }: RenderProps<NetworkViewModel>): () => void {
  const view = new NetworkView(model, el);
  return () => view.dispose();
}

export default { render };
