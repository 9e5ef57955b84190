/**
 * The training dashboard's front end (mirror of nonlin_explorer/ui/dashboard_controller.py), loaded by anywidget
 * in Jupyter and by Panel's AnyWidgetComponent in the served app.
 *
 * Everything is drawn here: the controls (plain DOM), the network view (the NetworkView class on the same model),
 * and every curve on its own canvas, repainted once per animation frame when its data changed. The kernel sends
 * the rows that arrived since its last flush; a view that opens asks for the whole history (`hello`). A request
 * (a button, a slider, a unit) shows its effect at once and is rolled back, with a note, if the kernel refuses it.
 */

import type { AnyModel, RenderProps } from '@anywidget/types';
import { CoreBars } from '../charts/bars';
import { BoundaryChart } from '../charts/boundary';
import { button, Chart, download, el } from '../charts/chart';
import { ChartData, num } from '../charts/data';
import { Heatmap } from '../charts/heatmap';
import { LineChart } from '../charts/line_chart';
import { palette, resolveTheme } from '../charts/theme';
import { decode } from '../codecs';
import { RUN_SETTING_KEYS, RunSettingKey } from '../generated/tables';
import { NetworkView } from '../network_view';
import { keepControlKeys } from '../own_keys';
import { dropTokenFromUrl, subscribe, watchTheme } from '../page_wiring';
import { Channel, Request } from '../transport';
import { SeriesStore } from './series';
import { DashboardMessage, DashboardModel, RunSettings, RunStatus } from './types';

type Model = AnyModel<DashboardModel>;

function fmtNumber(v: number): string {
  if (v === 0) {
    return '0';
  }
  return Math.abs(v) < 1e-2 || Math.abs(v) >= 1e4 ? v.toExponential(0).replace('e-0', 'e-').replace('e+0', 'e') :
    String(+v.toPrecision(3));
}

/** The text input, select or range input of a labelled field. */
function field<T extends HTMLElement>(label: string, control: T, cls = ''): { wrap: HTMLElement; control: T } {
  const id = `ne-${label.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${Math.random().toString(36).slice(2, 7)}`;
  control.id = id;
  const wrap = el('div', { class: `ne-field ${cls}`.trim() });
  wrap.append(el('label', { for: id }, label), control);
  return { wrap, control };
}

function select(options: string[], value: string): HTMLSelectElement {
  const s = el('select');
  s.append(...options.map(o => el('option', { value: o }, o)));
  s.value = value;
  return s;
}

/** The line under a button where its request's answer is shown (a notice next to where the user acted). */
function answerLine(): HTMLElement {
  const line = el('p', { class: 'ne-notice ne-answer', role: 'status', 'aria-live': 'polite' });
  line.hidden = true;
  return line;
}

const answerTimers = new WeakMap<HTMLElement, number>();

function showAnswer(line: HTMLElement, text: string, kind: string): void {
  line.textContent = text;
  line.dataset.kind = kind;
  line.hidden = false;
  window.clearTimeout(answerTimers.get(line));
  if (kind === 'success') {
    answerTimers.set(line, window.setTimeout(() => (line.hidden = true), 20000));
  }
}

/** A chart's height for its width: wider charts (a big screen) grow taller, within readable bounds. */
export function chartHeight(square: boolean, width: number): number {
  const [ratio, lo, hi] = square ? [0.75, 260, 480] : [0.56, 200, 380];
  return Math.round(Math.min(hi, Math.max(lo, width * ratio)));
}

export class Dashboard {
  readonly root: HTMLElement;
  private readonly channel: Channel;
  private readonly store = new SeriesStore();
  private readonly cleanups: (() => void)[] = [];
  private readonly network: NetworkView;
  private readonly charts: Chart[] = [];
  private readonly lines: LineChart[] = [];
  private readonly heat: Heatmap;
  private readonly bars: CoreBars;
  private readonly boundary: BoundaryChart;
  // header
  private readonly titleEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly noticeEl: HTMLElement;
  // controls
  private readonly liveBox: HTMLElement;
  private readonly replayBox: HTMLElement;
  private readonly startBtn: HTMLButtonElement;
  private readonly pauseBtn: HTMLButtonElement;
  private readonly stopBtn: HTMLButtonElement;
  private readonly resetBtn: HTMLButtonElement;
  private readonly sparsitySlider: HTMLInputElement;
  private readonly sparsityValue: HTMLElement;
  private readonly sparsityText: HTMLInputElement;
  private readonly lrSlider: HTMLInputElement;
  private readonly lrValue: HTMLElement;
  private readonly priorText: HTMLElement;
  private readonly priorBtn: HTMLButtonElement;
  private readonly form: Record<string, HTMLInputElement | HTMLSelectElement> = {};
  private readonly schedule: HTMLSelectElement;
  private readonly exportPath: HTMLInputElement;
  private readonly recordPath: HTMLInputElement;
  private readonly codeEl: HTMLElement;
  private readonly playBtn: HTMLButtonElement;
  private readonly speedSel: HTMLSelectElement;
  private readonly scrubber: HTMLInputElement;
  private readonly scrubLabel: HTMLElement;
  /** Requests shown before the kernel answered: id -> how to undo them. */
  private readonly pending = new Map<string, () => void>();
  /** Requests answered next to their button (Export, Record): id -> the answer's element. */
  private readonly answerAt = new Map<string, HTMLElement>();
  /** The last notice this view has handled (a notice is shown once, by the views open when it was given). */
  private noticeSeq = 0;
  private noticeTimer = 0;
  private readonly chartSizer: ResizeObserver;

  constructor(
    private readonly model: Model,
    host: HTMLElement
  ) {
    this.channel = new Channel(model);
    this.root = el('div', { class: 'ne-dash', 'data-lm-suppress-shortcuts': 'true' });
    // Header.
    const header = el('header', { class: 'ne-dash-header' });
    this.titleEl = el('h2', { class: 'ne-dash-title' });
    this.statusEl = el('p', { class: 'ne-dash-status', 'aria-live': 'off' });
    this.noticeEl = el('p', { class: 'ne-notice', role: 'status', 'aria-live': 'polite' });
    this.noticeEl.hidden = true;
    header.append(this.titleEl, this.statusEl, this.noticeEl);

    // Controls.
    const controls = el('aside', { class: 'ne-controls', 'aria-label': 'controls' });
    this.liveBox = el('div', { class: 'ne-live-controls' });
    const buttons = el('div', { class: 'ne-buttons' });
    this.startBtn = button('Start', 'ne-go', () => this.request({ type: 'start' }, () => this.optimisticStatus('running')),
      'Start training (or resume it)');
    this.pauseBtn = button('Pause', 'ne-hold', () => this.request({ type: 'pause' }, () => this.optimisticStatus('paused')));
    this.stopBtn = button('Stop', 'ne-halt', () => this.request({ type: 'stop' }, () => this.optimisticStatus('stopping')));
    this.resetBtn = button('Apply & reset', 'ne-primary', () => this.reset(),
      'Stop this run and start a new one with the run settings below (this run stays as a faded curve)');
    buttons.append(this.startBtn, this.pauseBtn, this.stopBtn, this.resetBtn);

    const live = el('section', { class: 'ne-section ne-live-settings', 'aria-label': 'live settings' });
    live.append(el('h3', { class: 'ne-section-title' }, 'Live (applied at the next step)'));
    this.sparsitySlider = el('input', { type: 'range', min: '0', step: '1', class: 'ne-sparsity-slider' });
    this.sparsityValue = el('output', { class: 'ne-value' });
    const sp = field('Sparsity λ (log scale)', this.sparsitySlider, 'ne-slider-field');
    sp.wrap.append(this.sparsityValue);
    this.sparsityText = el('input', { type: 'text', inputmode: 'decimal', class: 'ne-number', autocomplete: 'off' });
    const spText = field('Sparsity λ (exact)', this.sparsityText);
    this.lrSlider = el('input', { type: 'range', min: '0', step: '1', class: 'ne-lr-slider' });
    this.lrValue = el('output', { class: 'ne-value' });
    const lr = field('Learning rate (log scale)', this.lrSlider, 'ne-slider-field');
    lr.wrap.append(this.lrValue);
    const prior = el('div', { class: 'ne-prior' });
    this.priorText = el('span', { class: 'ne-prior-text' });
    this.priorBtn = button('Switch the prior on now', 'ne-secondary', () =>
      this.request({ type: 'prior_on' }, () => this.optimisticPrior()));
    prior.append(this.priorText, this.priorBtn);
    live.append(sp.wrap, spText.wrap, lr.wrap, prior);

    const run = el('details', { class: 'ne-section ne-run-settings' });
    run.open = true;
    run.append(el('summary', {}, 'Run (applied by Apply & reset)'));
    const grid = el('div', { class: 'ne-form-grid' });
    this.schedule = select(['early', 'late'], 'early');
    // Every run setting of the one list (nonlin_explorer/ui/dashboard_settings.json) has a control: the form's own
    // fields here, in the list's order; sparsity and lr are the live sliders above.
    const runControls: Record<Exclude<RunSettingKey, 'sparsity' | 'lr'>, [string, HTMLInputElement | HTMLSelectElement]> = {
      dataset: ['Dataset', select([], '')],
      model: ['Model', select([], '')],
      width: ['Width', el('input', { type: 'text', inputmode: 'decimal', placeholder: 'default' })],
      depth: ['Depth', el('input', { type: 'text', inputmode: 'numeric', placeholder: 'default' })],
      seed: ['Seed', el('input', { type: 'text', inputmode: 'numeric' })],
      epochs: ['Epochs', el('input', { type: 'text', inputmode: 'decimal' })],
      schedule: ['Schedule', this.schedule]
    };
    for (const name of RUN_SETTING_KEYS) {
      if (name === 'sparsity' || name === 'lr') {
        continue;
      }
      const [label, control] = runControls[name];
      this.form[name] = control;
      grid.append(field(label, control).wrap);
    }
    run.append(grid);

    const files = el('details', { class: 'ne-section ne-files' });
    files.append(el('summary', {}, 'Export and record'));
    this.exportPath = el('input', { type: 'text', value: 'results.nc', autocomplete: 'off' });
    this.recordPath = el('input', { type: 'text', value: 'run.rec', autocomplete: 'off' });
    const ex = field('Export to (netCDF)', this.exportPath);
    const exAnswer = answerLine();
    ex.wrap.append(button('Export', 'ne-secondary', () =>
      this.requestAnswered({ type: 'export', path: this.exportPath.value }, exAnswer)), exAnswer);
    const rec = field('Save a recording to (folder)', this.recordPath);
    const recAnswer = answerLine();
    rec.wrap.append(button('Record', 'ne-secondary', () =>
      this.requestAnswered({ type: 'record', path: this.recordPath.value }, recAnswer)), recAnswer);
    const snap = button('Save a snapshot (HTML)', 'ne-secondary', () => this.saveSnapshot(),
      'A self-contained page with the charts, the network and the code, for sharing (works offline)');
    files.append(ex.wrap, rec.wrap, snap);

    const code = el('details', { class: 'ne-section ne-code-section' });
    code.append(el('summary', {}, 'Reproduce this run'));
    this.codeEl = el('code', { class: 'ne-code' });
    const pre = el('pre', { class: 'ne-pre' });
    pre.append(this.codeEl);
    const copy = button('Copy', 'ne-secondary ne-copy', () => this.copyCode(copy), 'Copy the code');
    code.append(pre, copy);
    this.liveBox.append(buttons, live, run, files);

    this.replayBox = el('div', { class: 'ne-replay-controls' });
    this.playBtn = button('Play', 'ne-go ne-play', () => this.togglePlay());
    this.speedSel = el('select');
    this.speedSel.addEventListener('change', () =>
      this.request({ type: 'replay', action: 'speed', speed: Number(this.speedSel.value) }));
    this.scrubber = el('input', { type: 'range', min: '-1', step: '1', value: '-1', class: 'ne-scrubber' });
    this.scrubLabel = el('output', { class: 'ne-value' });
    this.scrubber.addEventListener('change', () =>
      this.request({ type: 'replay', action: 'seek', index: Number(this.scrubber.value) }));
    this.scrubber.addEventListener('input', () => this.showScrub(Number(this.scrubber.value)));
    const speed = field('Speed', this.speedSel);
    const scrub = field('Evaluation', this.scrubber, 'ne-slider-field');
    scrub.wrap.append(this.scrubLabel);
    this.replayBox.append(el('div', { class: 'ne-buttons' }), speed.wrap, scrub.wrap);
    this.replayBox.firstChild?.appendChild(this.playBtn);
    controls.append(this.liveBox, this.replayBox, code);

    // Main area: the network and the charts.
    const main = el('div', { class: 'ne-dash-main' });
    const netHost = el('div', { class: 'ne-network-host' });
    const chartsEl = el('div', { class: 'ne-charts' });
    main.append(netHost, chartsEl);
    const body = el('div', { class: 'ne-dash-body' });
    body.append(controls, main);
    this.root.append(header, body);
    host.append(this.root);
    keepControlKeys(this.root);

    this.network = new NetworkView(model as unknown as AnyModel<never>, netHost);
    const loss = new LineChart({ id: 'loss', title: 'Loss', xLabel: 'step', yLabel: 'cross-entropy', log: 'toggle',
      smoothing: true, series: [
        { key: 'loss', label: 'batch', color: 'batch', source: 'steps', width: 1, smooth: true },
        { key: 'train_loss', label: 'train (mean since last evaluation)', color: 'train', source: 'evals',
          smooth: true },
        { key: 'test_loss', label: 'test', color: 'test', source: 'evals', dash: [6, 3] }] });
    const acc = new LineChart({ id: 'accuracy', title: 'Accuracy', xLabel: 'step', yLabel: 'accuracy',
      yRange: [0, 1], series: [
        { key: 'train_acc', label: 'train', color: 'train', source: 'evals' },
        { key: 'test_acc', label: 'test', color: 'test', source: 'evals', dash: [6, 3] }] });
    const units = new LineChart({ id: 'nonlinear', title: 'Nonlinear units', xLabel: 'step',
      yLabel: 'nonlinear units', series: [
        { key: 'nonlinear_total', label: 'nonlinear units (all layers)', color: 'nonlinear', source: 'evals' }],
      note: d => `A unit is nonlinear while 1 − α > ${d.tol}; ${d.units.reduce((a, b) => a + b, 0)} units in all.` });
    const lam = new LineChart({ id: 'sparsity', title: 'Sparsity λ in force', xLabel: 'step', yLabel: 'λ',
      log: 'always', series: [{ key: 'sparsity', label: 'λ in force', color: 'sparsity', source: 'evals', step: true,
        positive: true }],
      note: () => 'Log axis; a gap means the prior was off (λ not in force).' });
    const apl = new LineChart({ id: 'apl', title: 'Average path length (effective depth)', xLabel: 'step',
      yLabel: 'nonlinear units on a path', series: [
        { key: 'apl_normalized', label: 'normalized (even split at merges)', color: 'apl_normalized',
          source: 'evals' },
        { key: 'apl_unnormalized', label: 'unnormalized (all paths equal)', color: 'apl_unnormalized',
          source: 'evals', dash: [6, 3] }],
      note: () => 'Without skip connections both are equal (the sum over layers of the nonlinear fraction).' });
    this.boundary = new BoundaryChart('boundary', 'Decision boundary (test points)');
    this.heat = new Heatmap('heatmap', 'Linear units per layer');
    this.bars = new CoreBars('core', 'Core network now: nonlinear width per layer');
    this.lines.push(loss, acc, units, lam, apl);
    // The loss first: beside the network (or just below it), where the effect of a control shows.
    this.charts.push(loss, this.boundary, acc, this.heat, units, apl, lam, this.bars);
    chartsEl.append(...this.charts.map(c => c.el));
    // Charts are as tall as their width allows (the grid gives them more room on a big screen).
    this.chartSizer = new ResizeObserver(entries => {
      for (const entry of entries) {
        const chart = this.charts.find(c => c.el === entry.target);
        chart?.setHeight(chartHeight(chart === this.boundary, entry.contentRect.width));
      }
    });
    this.charts.forEach(c => this.chartSizer.observe(c.el));

    // Model events.
    this.cleanups.push(subscribe<DashboardMessage>(model, {
      'change:run': () => this.onRun(),
      'change:settings': () => this.onSettings(),
      'change:options': () => this.onOptions(),
      'change:code': () => (this.codeEl.textContent = model.get('code') ?? ''),
      'change:notice': () => this.onNotice(),
      'change:replay': () => this.onReplay(),
      'change:mode': () => this.onMode(),
      'change:heading': () => this.onHeading(),
      'change:theme': () => this.applyTheme(),
      'change:boundary': () => this.onBoundary(),
      'change:points': () => this.onBoundary(),
      'msg:custom': msg => this.onMessage(msg)
    }), watchTheme(() => this.applyTheme()));

    // Inputs.
    this.sparsitySlider.addEventListener('input', () => this.showSliderValue());
    this.sparsitySlider.addEventListener('change', () => this.setSparsity(this.stops('sparsity_stops')[
      Number(this.sparsitySlider.value)]));
    this.sparsityText.addEventListener('change', () => this.setSparsity(this.sparsityText.value));
    this.sparsityText.addEventListener('keydown', e => {
      if (e.key === 'Enter') {
        this.setSparsity(this.sparsityText.value);
      }
    });
    this.lrSlider.addEventListener('input', () => this.showSliderValue());
    this.lrSlider.addEventListener('change', () => {
      const old = this.model.get('settings')?.lr;
      const v = this.stops('lr_stops')[Number(this.lrSlider.value)];
      this.request({ type: 'set', lr: v }, undefined, () => this.placeSlider(this.lrSlider, 'lr_stops', old ?? v));
    });

    this.onOptions();
    this.onSettings();
    this.onRun();
    this.onMode();
    this.onHeading();
    this.onReplay();
    this.onNotice(true); // one given before this view was drawn: shown only if lasting (refused URL settings)
    this.codeEl.textContent = model.get('code') ?? '';
    this.onBoundary();
    this.applyTheme();
    this.channel.send({ type: 'hello' }); // the whole history so far
  }

  dispose(): void {
    this.cleanups.forEach(fn => fn());
    this.chartSizer.disconnect();
    this.charts.forEach(c => c.dispose());
    this.network.dispose();
    window.clearTimeout(this.noticeTimer);
    this.root.remove();
  }

  // -- requests ------------------------------------------------------------------------------------

  /** Send a request; `show` applies its effect at once, `undo` rolls it back if the kernel refuses. */
  private request(req: Request, show?: () => void, undo?: () => void): void {
    const id = this.channel.send(req);
    if (undo) {
      this.pending.set(id, undo);
    }
    show?.();
  }

  /** Send a request whose answer (the notice it gives, or its error) is shown in `at`, next to its button. */
  private requestAnswered(req: Request, at: HTMLElement): void {
    this.answerAt.set(this.channel.send(req), at);
    showAnswer(at, 'working…', 'info');
  }

  private onMessage(msg: DashboardMessage): void {
    if (!msg || typeof msg !== 'object') {
      return;
    }
    if (msg.type === 'series') {
      if (!this.store.append(msg.run, msg.steps, msg.evals)) {
        this.channel.send({ type: 'hello' });
      }
      this.updateCharts();
    } else if (msg.type === 'snapshot') {
      this.store.reset(msg.run, msg.steps, msg.evals, msg.overlays ?? []);
      this.updateCharts();
    } else if ((msg.type === 'ack' || msg.type === 'error') && this.channel.owns(msg.id)) {
      const ms = this.channel.settle(msg.id);
      this.root.dataset.ackMs = ms.toFixed(1);
      const undo = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      const at = this.answerAt.get(msg.id);
      if (msg.type === 'error') {
        undo?.();
        this.answerAt.delete(msg.id);
        if (at) {
          showAnswer(at, msg.message, 'danger');
        } else {
          this.showNotice(msg.message, 'danger');
        }
      } else if (at) {
        // Done; its notice comes with the state (before or after this ack): wait a little for it, then stop.
        const id = msg.id;
        window.setTimeout(() => {
          if (this.answerAt.get(id) === at) {
            this.answerAt.delete(id);
            if (at.dataset.kind === 'info') {
              showAnswer(at, 'done', 'success');
            }
          }
        }, 3000);
      }
    } else if (msg.type === 'error' && (msg.id === null || msg.id === undefined)) {
      this.showNotice(msg.message, 'danger');
    }
  }

  private optimisticStatus(status: string): void {
    const run = this.model.get('run');
    if (run) {
      this.renderStatus({ ...run, status });
    }
  }

  private optimisticPrior(): void {
    const run = this.model.get('run');
    if (run) {
      this.renderStatus({ ...run, prior_on: true, sparsity: run.target_sparsity });
    }
  }

  private stops(name: 'sparsity_stops' | 'lr_stops'): number[] {
    return this.model.get('options')?.[name] ?? [];
  }

  private placeSlider(slider: HTMLInputElement, name: 'sparsity_stops' | 'lr_stops', value: number): void {
    const stops = this.stops(name);
    let best = 0;
    stops.forEach((s, i) => {
      const d = (a: number) => (a <= 0 ? -99 : Math.log(a));
      if (Math.abs(d(s) - d(value)) < Math.abs(d(stops[best]) - d(value))) {
        best = i;
      }
    });
    slider.max = String(Math.max(0, stops.length - 1));
    slider.value = String(best);
    this.showSliderValue();
  }

  private showSliderValue(): void {
    const sp = this.stops('sparsity_stops')[Number(this.sparsitySlider.value)];
    const lr = this.stops('lr_stops')[Number(this.lrSlider.value)];
    this.sparsityValue.textContent = sp === undefined ? '' : `λ = ${fmtNumber(sp)}`;
    this.lrValue.textContent = lr === undefined ? '' : fmtNumber(lr);
  }

  private setSparsity(value: number | string): void {
    const old = this.model.get('settings')?.sparsity ?? 0;
    const text = String(value).trim();
    const v = Number(text);
    const show = () => {
      if (Number.isFinite(v)) {
        this.sparsityText.value = fmtNumber(v);
        this.placeSlider(this.sparsitySlider, 'sparsity_stops', v);
      }
    };
    const undo = () => {
      this.sparsityText.value = fmtNumber(old);
      this.placeSlider(this.sparsitySlider, 'sparsity_stops', old);
    };
    // Bad text is the kernel's to judge too (one place checks numbers): it answers with the reason.
    this.request({ type: 'set', sparsity: text === '' || !Number.isFinite(v) ? text : v }, show, undo);
  }

  private reset(): void {
    const settings: Record<string, unknown> = {};
    for (const [name, control] of Object.entries(this.form)) {
      const text = control.value.trim();
      if (name === 'dataset' || name === 'model' || name === 'schedule') {
        settings[name] = text;
      } else {
        settings[name] = text === '' ? null : (Number.isFinite(Number(text)) ? Number(text) : text);
      }
    }
    settings.sparsity = this.model.get('settings')?.sparsity;
    settings.lr = this.model.get('settings')?.lr;
    this.request({ type: 'reset', settings }, () => this.showNotice('building the new run…', 'info'),
      () => this.onSettings());
  }

  private togglePlay(): void {
    const playing = !!this.model.get('replay')?.playing;
    this.request({ type: 'replay', action: playing ? 'pause' : 'play' },
      () => (this.playBtn.textContent = playing ? 'Play' : 'Pause'), () => this.onReplay());
  }

  private showScrub(index: number): void {
    const n = this.model.get('replay')?.evals ?? 0;
    this.scrubLabel.textContent = index < 0 ? 'start' : `${index + 1} of ${n}`;
  }

  private async copyCode(btn: HTMLButtonElement): Promise<void> {
    const text = this.codeEl.textContent ?? '';
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      const area = el('textarea');
      area.value = text;
      this.root.append(area);
      area.select();
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      area.remove();
    }
    btn.textContent = ok ? 'Copied' : 'Select and copy';
    window.setTimeout(() => (btn.textContent = 'Copy'), 1500);
  }

  // -- model -> page -------------------------------------------------------------------------------

  private onHeading(): void {
    this.titleEl.textContent = `nonlin_explorer: ${this.model.get('heading') || 'training'}`;
  }

  private onMode(): void {
    const replay = this.model.get('mode') === 'replay';
    this.liveBox.hidden = replay;
    this.replayBox.hidden = !replay;
    this.root.dataset.mode = replay ? 'replay' : 'live';
  }

  private onOptions(): void {
    const o = this.model.get('options');
    if (!o) {
      return;
    }
    for (const [name, list] of [['dataset', o.datasets], ['model', o.models], ['schedule', o.schedules]] as const) {
      const s = this.form[name] as HTMLSelectElement;
      const value = s.value;
      s.replaceChildren(...(list ?? []).map(v => el('option', { value: v }, v)));
      s.value = value;
    }
    this.speedSel.replaceChildren(...(o.speeds ?? []).map(v => el('option', { value: String(v) }, `${v}×`)));
    this.onSettings();
  }

  private onSettings(): void {
    const s = this.model.get('settings') as RunSettings | undefined;
    if (!s) {
      return;
    }
    const active = this.root.getRootNode() instanceof ShadowRoot ? (this.root.getRootNode() as ShadowRoot).activeElement
      : document.activeElement;
    for (const [name, control] of Object.entries(this.form)) {
      const v = (s as unknown as Record<string, unknown>)[name];
      if (control !== active) {
        control.value = v === null || v === undefined ? '' : String(v);
      }
    }
    if (this.sparsityText !== active) {
      this.sparsityText.value = fmtNumber(s.sparsity);
    }
    this.placeSlider(this.sparsitySlider, 'sparsity_stops', s.sparsity);
    this.placeSlider(this.lrSlider, 'lr_stops', s.lr);
  }

  private onRun(): void {
    const run = this.model.get('run') as RunStatus | undefined;
    if (!run) {
      return;
    }
    this.renderStatus(run);
    this.updateCharts();
  }

  private renderStatus(run: RunStatus): void {
    const acc = run.test_acc !== null && run.test_acc !== undefined && Number.isFinite(run.test_acc) ?
      `, test accuracy ${run.test_acc.toFixed(3)}` : '';
    const prior = run.prior_on ? 'prior on' : `prior off until step ${run.switch_step}`;
    const status = run.resetting ? 'building a new run' : run.status;
    const text = run.status === 'replay' ? `Replay: step ${run.step} of ${run.total_steps}${acc}` :
      `Device ${run.device_kind} · ${status}, step ${run.step}/${run.total_steps} · λ = ${fmtNumber(run.target_sparsity)}` +
      ` (${prior})${acc}${run.reason && /stopped|diverged|error/.test(run.status) ? ` · ${run.reason}` : ''}`;
    if (this.statusEl.textContent !== text) {
      this.statusEl.textContent = text;
    }
    this.root.dataset.status = status;
    this.priorText.textContent = run.prior_on ? `Prior on: λ = ${fmtNumber(run.target_sparsity)} in force.` :
      `Prior off (late schedule: on at step ${run.switch_step}).`;
    this.priorBtn.disabled = run.prior_on;
    const running = run.status === 'running';
    this.startBtn.textContent = run.status === 'paused' ? 'Resume' : 'Start';
    this.startBtn.setAttribute('aria-label', 'Start');
    this.pauseBtn.disabled = !running;
    this.stopBtn.disabled = !(running || run.status === 'paused');
    this.resetBtn.disabled = run.resetting;
  }

  /** A new notice: next to the button whose request it answers (the oldest one waiting), else in the header.
   * `opening`: the notice was given before this view was drawn; only a lasting one is shown then. */
  private onNotice(opening = false): void {
    const n = this.model.get('notice');
    const seq = n?.seq ?? 0;
    if (!n || !n.text || seq <= this.noticeSeq) {
      this.noticeSeq = Math.max(this.noticeSeq, seq);
      return;
    }
    this.noticeSeq = seq;
    if (opening) {
      if (n.lasting) {
        this.showNotice(n.text, n.kind ?? 'info');
      }
      return;
    }
    const waiting = this.answerAt.entries().next();
    if (!waiting.done) {
      const [id, at] = waiting.value;
      this.answerAt.delete(id);
      showAnswer(at, n.text, n.kind ?? 'info');
      return;
    }
    this.showNotice(n.text, n.kind ?? 'info');
  }

  private showNotice(text: string, kind: string): void {
    this.noticeEl.textContent = text;
    this.noticeEl.dataset.kind = kind;
    this.noticeEl.hidden = false;
    window.clearTimeout(this.noticeTimer);
    if (kind === 'success' || kind === 'info') {
      this.noticeTimer = window.setTimeout(() => (this.noticeEl.hidden = true), 8000);
    }
  }

  private onReplay(): void {
    const r = this.model.get('replay');
    if (!r || this.model.get('mode') !== 'replay') {
      return;
    }
    this.playBtn.textContent = r.playing ? 'Pause' : 'Play';
    this.playBtn.setAttribute('aria-label', r.playing ? 'Pause' : 'Play');
    this.scrubber.max = String(Math.max(0, (r.evals ?? 1) - 1));
    if (document.activeElement !== this.scrubber) {
      this.scrubber.value = String(r.eval_index ?? -1);
      this.showScrub(r.eval_index ?? -1);
    }
    this.speedSel.value = String(r.speed ?? 1);
  }

  private onBoundary(): void {
    const info = this.model.get('boundary_info');
    const has = !!info && (info.n ?? 0) > 0;
    this.boundary.el.hidden = !has;
    if (!has) {
      this.boundary.setData(null);
      return;
    }
    this.boundary.setData({ grid: decode(this.model.get('boundary'), 'uint8'), n: info.n, x: info.x, y: info.y,
      classes: info.classes, step: info.step, points: decode(this.model.get('points'), 'float32'),
      labels: decode(this.model.get('point_labels'), 'uint8') });
    this.root.dataset.boundaryStep = String(info.step);
  }

  private chartData(): ChartData {
    const run = this.model.get('run');
    const layers = this.model.get('layers') ?? [];
    return this.store.chartData(run?.total_steps ?? 1, run?.gate_names ?? layers.map(l => l.name),
      run?.units ?? layers.map(l => l.units), run?.tol ?? 1e-3);
  }

  private updateCharts(): void {
    const data = this.chartData();
    for (const c of this.lines) {
      c.setData(data);
    }
    this.heat.setData(data);
    this.bars.setData(data);
    const evals = data.current.evals.step ?? [];
    this.root.dataset.evals = String(evals.length);
    this.root.dataset.lastStep = String(evals.length ? num(evals[evals.length - 1]) : 0);
  }

  private applyTheme(): void {
    const name = resolveTheme(this.model.get('theme'));
    this.root.classList.toggle('ne-theme-dark', name === 'dark');
    this.root.classList.toggle('ne-theme-light', name === 'light');
    const font = getComputedStyle(this.root).fontFamily || 'system-ui, sans-serif';
    for (const c of this.charts) {
      c.setPalette(palette(name), font);
    }
    this.network.refreshTheme();
  }

  // -- sharing ---------------------------------------------------------------------------------------

  /** One HTML file with the status, every chart (SVG), the network (PNG) and the code: no script, no network. */
  private saveSnapshot(): void {
    const pal = palette(resolveTheme(this.model.get('theme')));
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const net = this.network.pngDataUrl();
    const charts = this.charts.map(c => `<figure><figcaption>${esc(c.el.querySelector('h3')?.textContent ?? '')}` +
      `</figcaption>${c.svg()}<p>${esc(c.el.querySelector('.ne-legend-list')?.textContent ?? '')}</p></figure>`);
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>nonlin_explorer snapshot</title>` +
      `<style>body{font:14px system-ui,sans-serif;background:${pal.bg};color:${pal.fg};margin:16px}` +
      `figure{display:inline-block;margin:8px;vertical-align:top}pre{background:${pal.grid};padding:8px;` +
      `overflow:auto}</style></head><body><h1>${esc(this.titleEl.textContent ?? '')}</h1>` +
      `<p>${esc(this.statusEl.textContent ?? '')}</p><p>Saved ${esc(new Date().toISOString())}</p>` +
      (net ? `<h2>Network</h2><img alt="every unit, coloured by its slope" src="${net}">` : '') +
      `<h2>Charts</h2>${charts.join('')}<h2>Reproduce this run</h2><pre>${esc(this.codeEl.textContent ?? '')}</pre>` +
      '</body></html>';
    download('nonlin_explorer-snapshot.html', new Blob([html], { type: 'text/html' }));
  }
}

function render({ model, el: host }: RenderProps<DashboardModel>): () => void {
  dropTokenFromUrl();
  const view = new Dashboard(model, host);
  return () => view.dispose();
}

export default { render };
