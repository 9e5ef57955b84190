/**
 * NetworkView's front end (mirror of nonlin_explorer/ui/network_controller.py), loaded by anywidget (and inside the
 * training dashboard).
 *
 * Parts: ``network/units.ts`` (the synced data and the optimistic state of clicks), ``network/painter.ts`` (the
 * canvas and its SVG twin), ``network/input.ts`` (pointer and keyboard), ``network/overview.ts`` (the layout of
 * big networks). This module builds the DOM, syncs it with the model and picks the mode:
 *
 * - **units**: one canvas paints every unit (cheap to repaint at 10+ Hz); an invisible layer holds one focusable
 *   element per unit (role "button", aria-label "<layer> unit <i>: <state>", roving tabindex);
 * - **overview** (when the units would be smaller than a few pixels, or there are more than ``MAX_UNIT_ELEMENTS``):
 *   one strip per layer, every layer labelled; a strip is a button that zooms into its layer's units.
 *
 * A click shows its effect at once and is confirmed by the kernel's states, or rolled back (with a note) when the
 * kernel refuses it or does not apply it in time.
 */

import type { AnyModel, RenderProps } from '@anywidget/types';
import { Geometry, LABEL_PX, layoutNetwork, unitsInRect } from './geometry';
import { UnitInput } from './network/input';
import { Overview, layoutOverview } from './network/overview';
import { labelRoom, shortenLeft } from './network/labels';
import { Label, SCALE, Theme, overviewSvg, paintOverview, paintUnits, readTheme, unitsSvg } from './network/painter';
import { STATE_NAMES, UnitData, WORDS } from './network/units';
import { LayerInfo, NetworkViewModel, NetworkViewReply, NetworkViewRequest, UnitState } from './network_view_types';
import { subscribe, watchTheme } from './page_wiring';
import { Channel } from './transport';

/** Above this many units, or below this cell size, the view shows the overview. */
export const MAX_UNIT_ELEMENTS = 6000;
const MIN_CELL = 5;

let instances = 0;

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
  /** Unique in the page, though each widget output may load its own copy of this module (and counter). */
  private readonly id = `${++instances}-${Math.random().toString(36).slice(2, 10)}`;
  private readonly root: HTMLDivElement;
  private readonly titleEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly countEl: HTMLElement;
  private readonly zoomBar: HTMLElement;
  private readonly zoomText: HTMLElement;
  private readonly stage: HTMLDivElement;
  private readonly plane: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly unitLayer: HTMLDivElement;
  /** Layer names under the columns (units mode), each with its full name as a title. */
  private readonly labelLayer: HTMLDivElement;
  private readonly band: HTMLDivElement;
  private readonly tooltip: HTMLDivElement;
  private readonly selectionBar: HTMLDivElement;
  private readonly selectionText: HTMLElement;
  private readonly tableBody: HTMLTableSectionElement;
  private readonly details: HTMLDetailsElement;
  private readonly live: HTMLElement;
  private readonly message: HTMLElement;
  private readonly help: HTMLElement;
  private readonly resize: ResizeObserver;
  private readonly cleanups: (() => void)[] = [];
  private readonly channel: Channel;
  private readonly data: UnitData;

  /** "units" (cells) or "overview" (a strip per layer); in overview, ``zoom`` is the layer shown as units. */
  private mode: 'units' | 'overview' = 'units';
  private zoom = -1;
  /** The units drawn as cells (global indices) and each unit's position among them (-1: not drawn). */
  private shown: number[] = [];
  private posOf = new Int32Array(0);
  private words = new Uint8Array(0);
  private unitEls: HTMLElement[] = [];
  private layerEls: HTMLElement[] = [];
  private layerRows: LayerRow[] = [];
  private geom: Geometry | null = null;
  private over: Overview | null = null;
  private labels: Label[] = [];
  private theme: Theme | null = null;
  private focusIndex = 0;
  private hover = -1;
  private hoverLayer = -1;
  private selection = new Set<number>();
  private frame = 0;
  private paintedStatesSeq = 0;
  private lastSize = '';
  private messageTimer = 0;
  private pendingTimer = 0;

  constructor(
    private readonly model: AnyModel<NetworkViewModel>,
    host: HTMLElement
  ) {
    this.channel = new Channel(model);
    this.data = new UnitData(model);
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
    this.zoomBar = h('div', { class: 'ne-zoom', hidden: '' });
    this.zoomText = h('span', { class: 'ne-zoom-text' });
    this.zoomBar.append(this.button('\u2190 All layers', 'Back to the overview of every layer', () => this.setZoom(-1),
      'all layers'), this.zoomText);
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
    this.labelLayer = h('div', { class: 'ne-labels' });
    this.plane.append(this.canvas, this.unitLayer, this.labelLayer, this.band);
    this.stage.append(this.plane);

    this.selectionBar = h('div', { class: 'ne-selection', role: 'toolbar', hidden: '' });
    this.selectionText = h('span', { class: 'ne-selection-text' });
    this.selectionBar.append(
      this.selectionText,
      this.button('Linear', 'Force the selected units linear', () => this.applySelection(UnitState.LINEAR)),
      this.button('Nonlinear', 'Force the selected units nonlinear', () => this.applySelection(UnitState.NONLINEAR)),
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
    this.help = h('div', { class: 'ne-help' });
    this.root.append(header, this.zoomBar, this.stage, this.selectionBar, this.details, this.help, this.message,
      this.live, this.tooltip);
    host.append(this.root);

    const listen = (target: EventTarget, type: string, fn: (e: Event) => void) => {
      target.addEventListener(type, fn);
      this.cleanups.push(() => target.removeEventListener(type, fn));
    };
    new UnitInput({
      unitOf: e => this.unitOf(e),
      planePoint: e => {
        const r = this.plane.getBoundingClientRect();
        return [e.clientX - r.left, e.clientY - r.top];
      },
      unitsInRect: (x0, y0, x1, y1) => (this.geom ? unitsInRect(this.geom, x0, y0, x1, y1).map(k => this.shown[k])
        : []),
      neighbour: (i, key, ctrl) => this.neighbour(i, key, ctrl),
      focusUnit: (i, focus) => this.focusUnit(i, focus),
      cycle: i => this.setUnits([i], ((this.data.stateOf(i) + 1) % 3) as UnitState),
      setUnits: (units, state) => this.setUnits(units, state),
      selection: this.selection,
      setSelection: units => this.setSelection(units),
      setHover: i => this.setHover(i),
      showBand: rect => {
        this.band.hidden = !rect;
        if (rect) {
          this.band.style.cssText = `left:${rect.x}px;top:${rect.y}px;width:${rect.w}px;height:${rect.h}px`;
        }
      },
      announce: text => (this.live.textContent = text)
    }, this.stage, this.unitLayer, listen);
    listen(this.unitLayer, 'focusin', e => this.onFocus(e as FocusEvent));
    listen(this.unitLayer, 'focusout', () => this.showTooltip(this.hover));
    listen(this.unitLayer, 'click', e => this.onLayerClick(e as MouseEvent));
    listen(this.unitLayer, 'keydown', e => this.onLayerKey(e as KeyboardEvent));

    this.cleanups.push(subscribe<NetworkViewReply>(model, {
      'change:layers': () => this.rebuild(),
      'change:blocks': () => this.rebuild(),
      'change:max_rows': () => this.rebuild(),
      'change:slopes': () => this.onSlopes(),
      'change:states': () => this.onStates(),
      'change:activations': () => this.onActivations(),
      'change:tol': () => this.onSlopes(),
      'change:title': () => this.updateHeader(),
      'change:status': () => this.updateHeader(),
      'change:step': () => this.updateHeader(),
      'msg:custom': msg => this.onReply(msg)
    }));

    this.resize = new ResizeObserver(() => this.relayoutIfResized());
    this.resize.observe(this.stage);
    // A theme switch changes the colours the canvas reads from CSS variables.
    this.cleanups.push(watchTheme(() => this.relayout()));
    this.rebuild();
  }

  dispose(): void {
    this.cleanups.forEach(fn => fn());
    this.resize.disconnect();
    cancelAnimationFrame(this.frame);
    window.clearTimeout(this.messageTimer);
    window.clearInterval(this.pendingTimer);
    this.root.remove();
  }

  /** Re-read the theme's colours (the host changed its theme). */
  refreshTheme(): void {
    this.relayout();
  }

  // -- model -> page ---------------------------------------------------------------------------------

  private rebuild(): void {
    this.data.readLayout();
    this.data.readSlopes();
    this.data.readStates();
    this.data.readActivations();
    this.words = new Uint8Array(this.data.count).fill(255);
    this.selection.clear();
    this.zoom = -1;
    this.buildTable();
    this.updateHeader();
    this.relayout();
  }

  private onSlopes(): void {
    this.data.readSlopes();
    this.updateWords();
    this.schedule();
  }

  private onStates(): void {
    this.data.readStates();
    this.expirePending();
    this.updateWords();
    this.schedule();
  }

  private onActivations(): void {
    this.data.readActivations();
    if (this.hover >= 0 || this.tooltipUnit() >= 0) {
      this.showTooltip(this.tooltipUnit());
    }
  }

  private updateHeader(): void {
    this.titleEl.textContent = this.model.get('title') || 'Network';
    const status = this.model.get('status') || 'model';
    this.statusEl.textContent = status === 'model' ? '' : `${status} \u00b7 step ${this.model.get('step') ?? 0}`;
    this.root.dataset.status = status;
  }

  /** Refresh aria-labels where a unit's state word changed (rare: not on every slope update); the counts. */
  private updateWords(): void {
    const shownTip = this.tooltip.hidden ? -1 : Number(this.tooltip.dataset.unit ?? -1);
    let tooltipStale = false;
    for (let k = 0; k < this.unitEls.length; k++) {
      const i = this.shown[k];
      const w = this.data.wordOf(i);
      if (w !== this.words[i]) {
        this.words[i] = w;
        this.unitEls[k].setAttribute('aria-label', this.data.labelOf(i));
        tooltipStale = tooltipStale || i === shownTip;
      }
    }
    if (tooltipStale) {
      this.showTooltip(shownTip); // the tooltip follows every change of its unit
    }
    this.updateCounts();
  }

  private updateCounts(): void {
    let total = 0;
    let nonlinear = 0;
    this.data.layers.forEach((layer, li) => {
      const c = this.data.layerCounts(li);
      total += layer.units;
      nonlinear += c.nonlinear;
      const row = this.layerRows[li];
      if (row) {
        const a = String(c.nonlinear);
        const b = `${c.forcedLinear} / ${c.forcedNonlinear}`;
        if (row.nonlinear.textContent !== a) {
          row.nonlinear.textContent = a;
        }
        if (row.forced.textContent !== b) {
          row.forced.textContent = b;
        }
      }
      const el = this.layerEls[li];
      if (el) {
        el.setAttribute('aria-label', `${layer.name}: ${layer.units} units, ${c.nonlinear} nonlinear`);
      }
    });
    const text = `${nonlinear} of ${total} units nonlinear`;
    if (this.countEl.textContent !== text) {
      this.countEl.textContent = text;
    }
  }

  // -- requests and answers --------------------------------------------------------------------------

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
    const all: number[] = [];
    for (const [li, units] of targets) {
      const layer = this.data.layers[li];
      for (const u of units ?? Array.from({ length: layer.units }, (_, k) => k)) {
        all.push(layer.offset + u);
      }
    }
    this.data.expect(all, state, id);
    if (!this.pendingTimer) {
      this.pendingTimer = window.setInterval(() => {
        this.expirePending();
        if (!this.data.pending.size) {
          window.clearInterval(this.pendingTimer);
          this.pendingTimer = 0;
        }
      }, 1000);
    }
    this.updateWords();
    this.schedule();
  }

  private setUnits(units: number[], state: UnitState): void {
    const targets = new Map<number, number[]>();
    for (const i of units) {
      const li = this.data.layerOf[i];
      (targets.get(li) ?? targets.set(li, []).get(li)!).push(this.data.unitOf[i]);
    }
    this.requestStates(targets, state);
  }

  private setLayer(li: number, state: UnitState): void {
    this.requestStates(new Map([[li, null]]), state);
  }

  /** Roll back clicks the kernel has not applied in time (it keeps its own state; say so). */
  private expirePending(): void {
    const expired = this.data.expire();
    if (expired) {
      this.showMessage(`${expired} change${expired === 1 ? ' was' : 's were'} not applied by the kernel in ` +
        '10 s: showing its state again');
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
      const undone = this.data.rollBack(msg.id);
      const restored = undone ? ` (${undone} unit${undone === 1 ? '' : 's'} restored)` : '';
      this.showMessage(`The kernel refused the change${restored}: ${msg.message}`);
      this.updateWords();
      this.schedule();
    }
  }

  // -- DOM -------------------------------------------------------------------------------------------

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

  private buildTable(): void {
    this.tableBody.replaceChildren();
    this.layerRows = [];
    this.data.layers.forEach((layer, li) => {
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
    this.details.open = this.data.layers.length <= 8;
  }

  /** One focusable element per drawn unit, or per layer strip in the overview. */
  private buildElements(): void {
    this.unitLayer.replaceChildren();
    this.unitEls = [];
    this.layerEls = [];
    this.posOf = new Int32Array(this.data.count).fill(-1);
    this.words.fill(255);
    const frag = document.createDocumentFragment();
    if (this.mode === 'overview' && this.zoom < 0) {
      this.data.layers.forEach((layer, li) => {
        const el = h('div', { class: 'ne-layer-strip', role: 'button', tabindex: li === 0 ? '0' : '-1' });
        el.dataset.layer = String(li);
        el.title = `${layer.name}: ${layer.units} units. Click (or Enter) to show them.`;
        frag.append(el);
        this.layerEls.push(el);
      });
    } else {
      const byLayer = new Map<number, HTMLElement>();
      this.shown.forEach((i, k) => {
        this.posOf[i] = k;
        const li = this.data.layerOf[i];
        let group = byLayer.get(li);
        if (!group) {
          const layer: LayerInfo = this.data.layers[li];
          group = h('div', { class: 'ne-layer', role: 'group', 'aria-label': `layer ${layer.name}, ${layer.units} units` });
          group.dataset.layer = String(li);
          byLayer.set(li, group);
          frag.append(group);
        }
        const el = h('div', { class: 'ne-unit', role: 'button', tabindex: '-1' });
        el.dataset.i = String(i);
        el.setAttribute('aria-describedby', this.tooltip.id);
        group.append(el);
        this.unitEls.push(el);
      });
      const k = this.posOf[this.focusIndex] ?? -1;
      this.focusIndex = k >= 0 ? this.focusIndex : (this.shown[0] ?? 0);
      const fk = this.posOf[this.focusIndex];
      if (fk >= 0 && this.unitEls[fk]) {
        this.unitEls[fk].tabIndex = 0;
      }
    }
    this.unitLayer.append(frag);
    this.updateWords();
  }

  // -- layout and painting ---------------------------------------------------------------------------

  private fillMode(): boolean {
    return this.root.closest('.ne-present-panel') !== null;
  }

  private relayoutIfResized(): void {
    const size = `${this.stage.clientWidth}x${this.fillMode() ? this.stage.clientHeight : 0}`;
    if (size !== this.lastSize) {
      this.relayout();
    }
  }

  /** Pick the mode, lay out what it shows, rebuild the elements, paint. */
  private relayout(): void {
    const fill = this.fillMode();
    this.root.classList.toggle('ne-fill', fill);
    const width = this.stage.clientWidth || this.root.clientWidth || 800;
    const height = fill ? this.stage.clientHeight : 0;
    this.lastSize = `${this.stage.clientWidth}x${height}`;
    this.theme = readTheme(this.root);
    const layers = this.data.layers;
    const all = layoutNetwork(layers, this.model.get('blocks') ?? [], { width, height,
      maxRows: this.model.get('max_rows') ?? 0, maxCell: fill ? 64 : 28, minCell: 0.5 });
    this.mode = this.data.count > MAX_UNIT_ELEMENTS || all.cell < MIN_CELL ? 'overview' : 'units';
    this.root.dataset.mode = this.mode;
    if (this.mode === 'units') {
      this.zoom = -1;
      this.over = null;
      this.shown = Array.from({ length: this.data.count }, (_, i) => i);
      this.geom = layoutNetwork(layers, this.model.get('blocks') ?? [], { width, height,
        maxRows: this.model.get('max_rows') ?? 0, maxCell: fill ? 64 : 28 });
    } else if (this.zoom >= 0) {
      const layer = layers[this.zoom];
      this.shown = this.data.unitsOf(this.zoom);
      // One layer: a grid filling the width, cells as big as the height allows.
      const W = Math.max(100, width - 20);
      const H = fill && height > 0 ? Math.max(120, height - 40) : 420;
      let c = Math.min(fill ? 64 : 28, Math.sqrt((W * H) / Math.max(1, layer.units)));
      while (c > 3 && Math.ceil(layer.units / Math.max(1, Math.floor(W / c))) * c > H) {
        c *= 0.95;
      }
      const rows = Math.ceil(layer.units / Math.max(1, Math.floor(W / c)));
      this.geom = layoutNetwork([{ ...layer, offset: 0, block: -1 }], [], { width, height, maxRows: rows,
        maxCell: fill ? 64 : 28, minCell: 3, targetHeight: H + 40 });
      this.over = null;
    } else {
      this.shown = [];
      this.geom = null;
      this.over = layoutOverview(layers, this.model.get('blocks') ?? [], { width, height });
    }
    this.zoomBar.hidden = this.mode !== 'overview' || this.zoom < 0;
    if (this.zoom >= 0) {
      const layer = layers[this.zoom];
      this.zoomText.textContent = `${layer.name}: ${layer.units} units (one of ${layers.length} layers, ` +
        `${this.data.count} units in all)`;
    }
    this.help.textContent = this.mode === 'overview' && this.zoom < 0
      ? `${this.data.count} units in ${layers.length} layers: each strip is a layer (colour: the mean slope of the ` +
        'units in each row). Click a layer (or Enter) to show its units.'
      : 'Click a unit (or Enter/Space) to cycle free \u2192 forced linear \u2192 forced nonlinear; shift-drag to ' +
        'select several; arrow keys move.';
    // The skip arcs as drawn (plane px: x0 y0 cx cy x1 y1 per arc), for tests and tools that check the picture.
    const skips = this.geom ? this.geom.skips : this.over ? this.over.skips : [];
    this.root.dataset.skips = JSON.stringify(skips.map(k => [k.x0, k.y0, k.cx, k.cy, k.x1, k.y1]));
    const w = this.geom ? this.geom.width : this.over ? this.over.width : width;
    const ht = this.geom ? this.geom.height : this.over ? this.over.height : 100;
    this.plane.style.width = `${w}px`;
    this.plane.style.height = `${ht}px`;
    this.stage.style.height = fill ? '' : `${ht + (w > width ? 14 : 0)}px`;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(ht * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${ht}px`;
    this.buildElements();
    this.placeElements();
    this.computeLabels();
    this.paint();
  }

  private placeElements(): void {
    const g = this.geom;
    if (g) {
      const s = g.cell;
      for (let k = 0; k < this.unitEls.length; k++) {
        this.unitEls[k].style.cssText = `left:${g.x[k]}px;top:${g.y[k]}px;width:${s}px;height:${s}px`;
      }
    }
    const o = this.over;
    if (o) {
      this.layerEls.forEach((el, li) => {
        el.style.cssText = `left:${o.left[li]}px;top:${o.top[li]}px;width:${o.strip}px;` +
          `height:${o.bottom[li] - o.top[li]}px`;
      });
    }
  }

  /** Layer names under the columns (units mode): each shortened from the left to the room it has, full on hover. */
  private computeLabels(): void {
    this.labels = [];
    const g = this.geom;
    if (!g || !this.theme) {
      this.labelLayer.replaceChildren();
      return;
    }
    // Measured in the labels' own font (the view's: 14 px in the dashboards, the host's UI size elsewhere).
    const px = parseFloat(getComputedStyle(this.labelLayer).fontSize) || LABEL_PX;
    this.ctx.font = `${px}px ${this.theme.font}`;
    const layers = this.zoom >= 0 ? [this.data.layers[this.zoom]] : this.data.layers;
    const centres = layers.map((_, li) => (g.layerLeft[li] + g.layerRight[li]) / 2);
    const rooms = labelRoom(centres, g.width);
    const els = layers.map((layer, li) => {
      const text = shortenLeft(layer.name, t => this.ctx.measureText(t).width <= rooms[li]);
      this.labels.push({ text, x: centres[li] });
      const el = h('span', { class: 'ne-layer-label', title: layer.name }, text);
      el.style.cssText = `left:${centres[li] - rooms[li] / 2}px;top:${g.labelTop}px;width:${rooms[li]}px`;
      return el;
    });
    this.labelLayer.replaceChildren(...els);
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
    const theme = this.theme;
    if (!theme || (!this.geom && !this.over)) {
      return;
    }
    const t0 = performance.now();
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width / dpr, this.canvas.height / dpr);
    if (this.geom) {
      paintUnits(ctx, this.geom, this.shown, this.data, theme, this.selection, this.hover, this.posOf);
    } else if (this.over) {
      paintOverview(ctx, this.over, this.data, theme, this.hoverLayer);
    }
    if (this.paintedStatesSeq !== this.data.statesSeq) {
      this.paintedStatesSeq = this.data.statesSeq;
      this.root.dataset.statesPainted = String(this.data.statesSeq);
    }
    this.root.dataset.paints = String(Number(this.root.dataset.paints ?? 0) + 1);
    // For benchmarks: how long painting took (ms), last and worst.
    const ms = performance.now() - t0;
    this.root.dataset.paintMs = ms.toFixed(1);
    this.root.dataset.maxPaintMs = Math.max(ms, Number(this.root.dataset.maxPaintMs ?? 0)).toFixed(1);
  }

  // -- zoom, focus, selection, tooltip ---------------------------------------------------------------

  private setZoom(li: number): void {
    this.zoom = li;
    if (li >= 0) {
      this.focusIndex = this.data.layers[li].offset;
    }
    this.relayout();
    if (li >= 0) {
      this.focusUnit(this.focusIndex);
    } else {
      this.layerEls[0]?.focus();
    }
  }

  private layerOfEvent(e: Event): number {
    const t = e.target as HTMLElement | null;
    const li = t && t.dataset && t.classList.contains('ne-layer-strip') ? t.dataset.layer : undefined;
    return li === undefined ? -1 : Number(li);
  }

  private onLayerClick(e: MouseEvent): void {
    const li = this.layerOfEvent(e);
    if (li >= 0) {
      this.setZoom(li);
    }
  }

  private onLayerKey(e: KeyboardEvent): void {
    const li = this.layerOfEvent(e);
    if (li < 0) {
      return;
    }
    let next = -1;
    if (e.key === 'Enter' || e.key === ' ') {
      this.setZoom(li);
    } else if (e.key === 'ArrowRight' || e.key === 'ArrowDown') {
      next = Math.min(this.layerEls.length - 1, li + 1);
    } else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') {
      next = Math.max(0, li - 1);
    } else {
      return;
    }
    if (next >= 0) {
      this.layerEls[li].tabIndex = -1;
      this.layerEls[next].tabIndex = 0;
      this.layerEls[next].focus();
      this.hoverLayer = next;
      this.schedule();
    }
    e.preventDefault();
    e.stopPropagation();
  }

  private unitOf(e: Event): number {
    const t = e.target as HTMLElement | null;
    const i = t && t.dataset ? t.dataset.i : undefined;
    if (i !== undefined) {
      return Number(i);
    }
    if (e.type === 'pointermove') {
      const li = this.layerOfEvent(e);
      if (li !== this.hoverLayer) {
        this.hoverLayer = li;
        this.schedule();
      }
    }
    return -1;
  }

  /** The unit a navigation key leads to from unit ``i`` (within the units drawn). */
  private neighbour(i: number, key: string, ctrl: boolean): number | null {
    const g = this.geom;
    if (!g) {
      return null;
    }
    const li = this.data.layerOf[i];
    const u = this.data.unitOf[i];
    const layer = this.data.layers[li];
    const visible = this.zoom >= 0 ? [this.zoom] : this.data.layers.map((_, k) => k);
    const pos = visible.indexOf(li);
    const rows = g.layerRows[this.zoom >= 0 ? 0 : li];
    const at = (p: number, unit: number) => {
      const l = this.data.layers[visible[Math.max(0, Math.min(visible.length - 1, p))]];
      return l.offset + Math.max(0, Math.min(l.units - 1, unit));
    };
    switch (key) {
      case 'ArrowUp':
        return at(pos, u - 1);
      case 'ArrowDown':
        return at(pos, u + 1);
      case 'ArrowLeft':
        return u >= rows ? at(pos, u - rows) : at(pos - 1, u);
      case 'ArrowRight':
        return u + rows < layer.units ? at(pos, u + rows) : at(pos + 1, u);
      case 'Home':
        return at(ctrl ? 0 : pos, 0);
      case 'End':
        return at(ctrl ? visible.length - 1 : pos, ctrl ? Infinity : layer.units - 1);
      case 'PageUp':
        return at(pos, u - 8);
      case 'PageDown':
        return at(pos, u + 8);
      default:
        return null;
    }
  }

  private focusUnit(i: number, focus = true): void {
    const k = this.posOf[i] ?? -1;
    if (k < 0) {
      return;
    }
    const prev = this.posOf[this.focusIndex] ?? -1;
    if (prev >= 0 && this.unitEls[prev]) {
      this.unitEls[prev].tabIndex = -1;
    }
    this.focusIndex = i;
    const el = this.unitEls[k];
    el.tabIndex = 0;
    if (focus) {
      el.focus({ preventScroll: false });
    }
  }

  private onFocus(e: FocusEvent): void {
    const i = this.unitOf(e);
    if (i >= 0) {
      this.focusUnit(i, false);
      this.showTooltip(i);
    }
  }

  private applySelection(state: UnitState): void {
    this.setUnits(Array.from(this.selection), state);
  }

  private setSelection(units: number[]): void {
    this.selection.clear();
    units.forEach(i => this.selection.add(i));
    this.selectionBar.hidden = this.selection.size === 0;
    if (this.selection.size) {
      const layers = new Set(units.map(i => this.data.layerOf[i]));
      this.selectionText.textContent = `${this.selection.size} unit${this.selection.size === 1 ? '' : 's'} ` +
        `selected in ${layers.size} layer${layers.size === 1 ? '' : 's'}:`;
    }
    this.schedule();
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
    const k = i >= 0 ? (this.posOf[i] ?? -1) : -1;
    if (k < 0 || !this.unitEls[k]) {
      this.tooltip.hidden = true;
      return;
    }
    const layer = this.data.layers[this.data.layerOf[i]];
    const state = this.data.stateOf(i);
    const word = this.data.wordOf(i);
    this.tooltip.dataset.unit = String(i);
    this.tooltip.replaceChildren(
      h('strong', {}, `${layer.name} \u00b7 unit ${this.data.unitOf[i]}`),
      h('div', {}, `alpha ${fmt(this.data.shownSlope(i))} (${WORDS[word === 1 || word === 2 ? 1 : 0]})`),
      h('div', {}, `mean activation ${fmt(this.data.acts[i])}`),
      h('div', {}, `state: ${STATE_NAMES[state] ?? state}${this.data.pending.has(i) ? ' (sent to the kernel)' : ''}`)
    );
    this.tooltip.hidden = false;
    const cell = this.unitEls[k].getBoundingClientRect();
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

  private showMessage(text: string): void {
    this.message.textContent = text;
    this.message.hidden = false;
    window.clearTimeout(this.messageTimer);
    this.messageTimer = window.setTimeout(() => (this.message.hidden = true), 8000);
  }

  // -- export ----------------------------------------------------------------------------------------

  /** The painted network as a PNG data URL (for snapshots); '' before the first paint. */
  pngDataUrl(): string {
    return this.geom || this.over ? this.canvas.toDataURL('image/png') : '';
  }

  /** The network as SVG: what is drawn now (units, or the overview's strips). */
  svg(): string {
    const theme = this.theme ?? readTheme(this.root);
    if (this.geom) {
      return unitsSvg(this.geom, this.shown, this.data, this.labels, theme);
    }
    if (this.over) {
      return overviewSvg(this.over, this.data, theme);
    }
    return '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"/>';
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
    this.paint();
    const [head, body] = this.canvas.toDataURL('image/png').split(',', 2);
    const bytes = Uint8Array.from(atob(body), c => c.charCodeAt(0));
    this.save('nonlin_explorer-network.png', new Blob([bytes], { type: head.slice(5).split(';')[0] }));
  }

  exportSVG(): void {
    this.save('nonlin_explorer-network.svg', new Blob([this.svg()], { type: 'image/svg+xml' }));
  }
}

function render({ model, el }: RenderProps<NetworkViewModel>): () => void {
  const view = new NetworkView(model, el);
  return () => view.dispose();
}

export default { render };
