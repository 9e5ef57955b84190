/**
 * The compression explorer's front end (mirror of nonlin_explorer/ui/compression_controller.py), loaded by anywidget
 * in Jupyter and by Panel's AnyWidgetComponent in the served app.
 *
 * Controls in plain DOM, every view on its own canvas (the shared chart frame). A change is sent as a request; a
 * refused one is answered with one line next to its control and the form goes back to the last valid settings.
 * Panels wrap by the output's width (a container query), never past its right edge.
 */

import type { AnyModel, RenderProps } from '@anywidget/types';
import { button, Chart, el } from '../charts/chart';
import { palette, resolveTheme } from '../charts/theme';
import { keepControlKeys } from '../own_keys';
import { dropTokenFromUrl, subscribe, watchTheme } from '../page_wiring';
import { Channel, Request } from '../transport';
import { ConvergenceChart, DirectionsChart, GramChart, SweepChart, View3DChart } from './charts';
import { CompressionMessage, CompressionModel, ParamKey, Params, Shown } from './types';

type Model = AnyModel<CompressionModel>;

const NUMBERS: [ParamKey, string][] = [['N', 'N (target units)'], ['d', 'd (input dimension)'], ['seed', 'Seed'],
  ['w_mean', 'w mean (along e1)'], ['w_spread', 'w spread'], ['a_mean', 'a mean'], ['a_std', 'a spread'],
  ['M', 'M (compressed units)']];
const SELECTS: [ParamKey, string, 'weight_dists' | 'activations' | 'methods'][] = [
  ['weight_dist', 'Weight law', 'weight_dists'], ['activation', 'Activation', 'activations'],
  ['method', 'Method', 'methods']];
const M_SLIDER_MAX = 16;

function fmt(v: unknown): string {
  return typeof v === 'number' ? String(+v.toPrecision(6)) : String(v ?? '');
}

function answerLine(): HTMLElement {
  const line = el('p', { class: 'ne-notice ne-answer', role: 'status', 'aria-live': 'polite' });
  line.hidden = true;
  return line;
}

function show(line: HTMLElement, text: string, kind: string): void {
  line.textContent = text;
  line.dataset.kind = kind;
  line.hidden = !text;
}

function isShown(r: CompressionModel['shown']): r is Shown {
  return !!r && Array.isArray((r as Shown).gram);
}

export class CompressionPage {
  readonly root: HTMLElement;
  private readonly channel: Channel;
  private readonly cleanups: (() => void)[] = [];
  private readonly statusEl: HTMLElement;
  private readonly noticeEl: HTMLElement;
  private readonly inputs: Partial<Record<ParamKey, HTMLInputElement | HTMLSelectElement>> = {};
  private readonly answers: Partial<Record<ParamKey, HTMLElement>> = {};
  private readonly mSlider: HTMLInputElement;
  private readonly mValue: HTMLElement;
  private readonly actionAnswer: HTMLElement;
  private readonly sweepProgress: HTMLProgressElement;
  private readonly sweepText: HTMLElement;
  private readonly exportWhat: HTMLSelectElement;
  private readonly exportPath: HTMLInputElement;
  private readonly exportAnswer: HTMLElement;
  private readonly table: HTMLTableSectionElement;
  private readonly gram: GramChart;
  private readonly ideal: GramChart;
  private readonly directions: DirectionsChart;
  private readonly view3d: View3DChart;
  private readonly convergence: ConvergenceChart;
  private readonly sweep: SweepChart;
  private readonly charts: Chart[];
  private readonly sizer: ResizeObserver;
  /** Requests whose answer is shown next to a control: id -> its answer line. */
  private readonly answerAt = new Map<string, HTMLElement>();
  private readonly onRefused = new Map<string, () => void>();
  private noticeSeq = 0;

  constructor(private readonly model: Model, host: HTMLElement) {
    this.channel = new Channel(model);
    this.root = el('div', { class: 'ne-dash ne-cx', 'data-lm-suppress-shortcuts': 'true' });
    const header = el('header', { class: 'ne-dash-header' });
    header.append(el('h2', { class: 'ne-dash-title' }, 'Compression: N target units onto M'));
    this.statusEl = el('p', { class: 'ne-dash-status ne-cx-status', 'aria-live': 'off' });
    this.noticeEl = answerLine();
    header.append(this.statusEl, this.noticeEl);

    // Controls.
    const controls = el('aside', { class: 'ne-controls ne-cx-controls', 'aria-label': 'controls' });
    const target = el('section', { class: 'ne-section ne-cx-target', 'aria-label': 'target' });
    target.append(el('h3', { class: 'ne-section-title' }, 'Target'));
    const tgrid = el('div', { class: 'ne-form-grid' });
    target.append(tgrid);
    const comp = el('section', { class: 'ne-section ne-cx-compression', 'aria-label': 'compression' });
    comp.append(el('h3', { class: 'ne-section-title' }, 'Compression'));
    const cgrid = el('div', { class: 'ne-form-grid' });
    comp.append(cgrid);
    const field = (key: ParamKey, label: string, control: HTMLInputElement | HTMLSelectElement, grid: HTMLElement) => {
      const id = `ne-cx-${key}-${Math.random().toString(36).slice(2, 7)}`;
      control.id = id;
      control.dataset.key = key;
      control.classList.add(`ne-cx-${key}`);
      const wrap = el('div', { class: 'ne-field' });
      const answer = answerLine();
      answer.classList.add(`ne-cx-answer-${key}`);
      wrap.append(el('label', { for: id }, label), control, answer);
      grid.append(wrap);
      this.inputs[key] = control;
      this.answers[key] = answer;
      control.addEventListener('change', () => this.set(key, control.value));
      if (control instanceof HTMLInputElement) {
        control.addEventListener('keydown', e => {
          if (e.key === 'Enter') {
            this.set(key, control.value);
          }
        });
      }
    };
    for (const [key, label] of NUMBERS) {
      const input = el('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off' });
      field(key, label, input, key === 'M' ? cgrid : tgrid);
    }
    for (const [key, label] of SELECTS) {
      field(key, label, el('select'), key === 'method' ? cgrid : tgrid);
    }
    this.mSlider = el('input', { type: 'range', min: '1', max: '8', step: '1', class: 'ne-cx-m-slider',
      'aria-label': 'M (slider)' });
    this.mValue = el('output', { class: 'ne-value' });
    const sliderWrap = el('div', { class: 'ne-field ne-slider-field ne-cx-m-field' });
    sliderWrap.append(el('label', {}, 'M (slider)'), this.mSlider, this.mValue);
    this.mSlider.addEventListener('input', () => (this.mValue.textContent = this.mSlider.value));
    this.mSlider.addEventListener('change', () => this.set('M', this.mSlider.value));
    const buttons = el('div', { class: 'ne-buttons' });
    this.actionAnswer = answerLine();
    buttons.append(
      button('Re-optimize', 'ne-primary ne-cx-reoptimize', () => this.ask({ type: 'reoptimize' }, this.actionAnswer),
        'Optimize again (from the dragged weights after a drag)'),
      button('Loss vs M', 'ne-secondary ne-cx-sweep', () => this.ask({ type: 'sweep' }, this.actionAnswer),
        'The relative loss for M = 1..8, point by point (the chosen method first)'));
    comp.append(sliderWrap, buttons, this.actionAnswer);
    const files = el('section', { class: 'ne-section ne-cx-export', 'aria-label': 'export' });
    files.append(el('h3', { class: 'ne-section-title' }, 'Export (netCDF)'));
    this.exportWhat = el('select', { class: 'ne-cx-export-what', 'aria-label': 'what to export' });
    this.exportWhat.append(el('option', { value: 'result' }, 'this result'),
      el('option', { value: 'loss_vs_m' }, 'loss vs M'));
    this.exportPath = el('input', { type: 'text', value: 'compression.nc', autocomplete: 'off',
      class: 'ne-cx-export-path', 'aria-label': 'export to (a path in the files folder)' });
    this.exportAnswer = answerLine();
    this.exportAnswer.classList.add('ne-cx-export-answer');
    const exportRow = el('div', { class: 'ne-field' });
    exportRow.append(this.exportWhat, this.exportPath, button('Export', 'ne-secondary ne-cx-export-button', () =>
      this.ask({ type: 'export', path: this.exportPath.value, what: this.exportWhat.value }, this.exportAnswer)),
    this.exportAnswer);
    files.append(exportRow);
    controls.append(target, comp, files);

    // Views.
    const views = el('div', { class: 'ne-cx-views' });
    this.gram = new GramChart('gram', 'Compressed weights: cosines');
    this.ideal = new GramChart('ideal', 'Ideal shape');
    this.directions = new DirectionsChart('directions', 'Directions (PCA), drag a unit',
      (unit, x, y) => this.dragged(unit, x, y));
    this.view3d = new View3DChart('view3d', 'Directions in 3-D (PCA)');
    this.convergence = new ConvergenceChart('convergence', 'Convergence');
    this.sweep = new SweepChart('sweep', 'Relative loss against M');
    const progress = el('div', { class: 'ne-cx-progress' });
    this.sweepProgress = el('progress', { class: 'ne-cx-sweep-progress', max: '1', value: '0',
      'aria-label': 'loss against M: points computed' });
    this.sweepText = el('span', { class: 'ne-cx-sweep-text' });
    progress.append(this.sweepProgress, this.sweepText);
    this.sweep.el.append(progress);
    const summary = el('figure', { class: 'ne-chart ne-cx-summary', 'data-chart': 'summary' });
    const tbl = el('table', { class: 'ne-cx-table' });
    const head = el('thead');
    const hr = el('tr');
    hr.append(el('th', { scope: 'col' }, 'quantity'), el('th', { scope: 'col' }, 'value'));
    head.append(hr);
    this.table = el('tbody');
    tbl.append(head, this.table);
    const cap = el('figcaption', { class: 'ne-chart-head' });
    cap.append(el('h3', { class: 'ne-chart-title' }, 'Summary'));
    summary.append(cap, tbl);
    this.charts = [this.gram, this.ideal, this.directions, this.view3d, this.convergence, this.sweep];
    views.append(...this.charts.map(c => c.el), summary);
    const body = el('div', { class: 'ne-cx-body' });
    body.append(controls, views);
    this.root.append(header, body);
    host.append(this.root);
    keepControlKeys(this.root);

    this.sizer = new ResizeObserver(entries => {
      for (const entry of entries) {
        const chart = this.charts.find(c => c.el === entry.target);
        const w = entry.contentRect.width;
        const square = chart === this.gram || chart === this.ideal || chart === this.directions ||
          chart === this.view3d;
        chart?.setHeight(Math.round(Math.min(square ? 460 : 340, Math.max(square ? 240 : 220,
          w * (square ? 0.82 : 0.62)))));
      }
    });
    this.charts.forEach(c => this.sizer.observe(c.el));

    this.cleanups.push(subscribe<CompressionMessage>(model, {
      'change:params': () => this.onParams(),
      'change:options': () => this.onOptions(),
      'change:status': () => this.onStatus(),
      'change:shown': () => this.onResult(),
      'change:convergence': () => this.onConvergence(),
      'change:sweep': () => this.onSweep(),
      'change:notice': () => this.onNotice(),
      'change:theme': () => this.applyTheme(),
      'msg:custom': msg => this.onMessage(msg)
    }), watchTheme(() => this.applyTheme()));
    this.onOptions();
    this.onParams();
    this.onStatus();
    this.onResult();
    this.onConvergence();
    this.onSweep();
    this.onNotice();
    this.applyTheme();
  }

  dispose(): void {
    this.cleanups.forEach(fn => fn());
    this.sizer.disconnect();
    this.charts.forEach(c => c.dispose());
    this.root.remove();
  }

  // -- requests ------------------------------------------------------------------------------------------
  private ask(req: Request, at: HTMLElement, refused?: () => void): string {
    const id = this.channel.send(req);
    this.answerAt.set(id, at);
    if (refused) {
      this.onRefused.set(id, refused);
    }
    show(at, 'working…', 'info');
    return id;
  }

  private set(key: ParamKey, value: string): void {
    const params = this.model.get('params');
    if (params && fmt(params[key]) === value.trim()) {
      return; // nothing changed
    }
    for (const line of Object.values(this.answers)) {
      if (line && line.dataset.kind !== 'danger') {
        show(line, '', 'info');
      }
    }
    const at = this.answers[key] ?? this.actionAnswer;
    this.ask({ type: 'set', values: { [key]: value } }, at, () => this.onParams());
  }

  private dragged(unit: number, x: number, y: number): void {
    this.ask({ type: 'drag', unit, x, y }, this.actionAnswer, () => this.directions.release());
  }

  private onMessage(msg: CompressionMessage): void {
    if (!msg || typeof msg !== 'object') {
      return;
    }
    const id = msg.id;
    if (msg.type === 'answer' && this.channel.owns(id)) {
      const at = this.answerAt.get(id);
      if (at) {
        show(at, msg.text, msg.kind);
      }
      return;
    }
    if ((msg.type === 'ack' || msg.type === 'error') && this.channel.owns(id)) {
      this.root.dataset.ackMs = this.channel.settle(id).toFixed(1);
      const at = this.answerAt.get(id);
      this.answerAt.delete(id);
      const refused = this.onRefused.get(id);
      this.onRefused.delete(id);
      if (msg.type === 'error') {
        refused?.();
        if (at) {
          show(at, msg.message, 'danger');
        } else {
          show(this.noticeEl, msg.message, 'danger');
        }
      } else if (at && at.dataset.kind === 'info') {
        show(at, '', 'info'); // done: the views show the effect
      }
    } else if (msg.type === 'error' && (id === null || id === undefined)) {
      show(this.noticeEl, msg.message, 'danger');
    }
  }

  // -- state ---------------------------------------------------------------------------------------------
  private onOptions(): void {
    const opts = this.model.get('options');
    if (!opts || !opts.methods) {
      return;
    }
    for (const [key, , list] of SELECTS) {
      const s = this.inputs[key] as HTMLSelectElement;
      const want = opts[list] ?? [];
      if (Array.from(s.options).map(o => o.value).join() !== want.join()) {
        s.replaceChildren(...want.map(v => el('option', { value: v }, v)));
      }
    }
    this.onParams();
  }

  /** The form shows the last valid settings (after a refusal too). */
  private onParams(): void {
    const p: Params | undefined = this.model.get('params');
    if (!p || p.N === undefined) {
      return;
    }
    for (const [key, control] of Object.entries(this.inputs) as [ParamKey, HTMLInputElement | HTMLSelectElement][]) {
      control.value = fmt(p[key]);
    }
    const max = Math.max(2, Math.min(M_SLIDER_MAX, p.N - 1), p.M);
    this.mSlider.max = String(max);
    this.mSlider.value = String(p.M);
    this.mValue.textContent = String(p.M);
    this.onStatus();
  }

  private onStatus(): void {
    const s = this.model.get('status');
    const p = this.model.get('params');
    if (!s || !p || p.N === undefined) {
      return;
    }
    let text = `Status: ${s.state} (${p.method}, N = ${p.N}, d = ${p.d}, M = ${p.M})`;
    if (s.state === 'optimizing' && s.iteration !== null && s.relative_loss !== null) {
      text += `, iteration ${s.iteration}, relative loss ${fmt(+s.relative_loss.toPrecision(4))}`;
    } else if (s.state === 'optimizing') {
      text += ', computing…';
    }
    if (s.dragged) {
      text += '; a dragged unit: Re-optimize starts from here';
    }
    this.statusEl.textContent = text;
    this.root.dataset.state = s.state;
    if (s.error) {
      show(this.noticeEl, s.error, 'danger');
    }
  }

  private onResult(): void {
    const r = this.model.get('shown');
    if (!isShown(r)) {
      this.gram.setData(null);
      this.ideal.setData(null);
      return;
    }
    this.root.dataset.m = String(r.M);
    this.gram.setData(r.gram);
    this.ideal.setTitle(r.ideal.title);
    this.ideal.el.dataset.shape = r.ideal.name;
    this.ideal.setData(r.ideal.gram, r.ideal.name === 'vacuous' ? 'the optimum is g = 0: nothing to compare'
      : 'these directions are near no named shape (see the table)');
    this.directions.setData(r.pca.x, r.pca.y, r.pca.arrow);
    this.view3d.setData(r.coords3, r.arrow3);
    this.table.replaceChildren(...r.rows.map(([k, v]) => {
      const tr = el('tr');
      tr.append(el('th', { scope: 'row' }, k), el('td', {}, v));
      return tr;
    }));
  }

  private onConvergence(): void {
    const c = this.model.get('convergence');
    const s = this.model.get('status');
    if (!c || !c.iteration) {
      return;
    }
    this.convergence.setData(c.iteration, c.relative_loss, s?.method ?? 'exact');
  }

  private onSweep(): void {
    const s = this.model.get('sweep');
    if (!s || !s.methods) {
      return;
    }
    const hint = s.running ? 'computing…' : 'press Loss vs M';
    this.sweep.setData(s.methods, s.Ms, s.losses, hint);
    this.sweepProgress.max = Math.max(1, s.total);
    this.sweepProgress.value = s.done;
    this.sweepProgress.hidden = !s.total;
    this.sweepText.textContent = s.total ? `${s.done} of ${s.total} points${s.running ? ', computing…' : ''}` :
      'not computed for these settings';
    this.sweep.el.dataset.done = String(s.done);
    this.sweep.el.dataset.running = String(s.running);
    if (s.error) {
      show(this.actionAnswer, s.error, 'danger');
    }
  }

  private onNotice(): void {
    const n = this.model.get('notice');
    if (n && n.seq && n.seq !== this.noticeSeq && n.text) {
      this.noticeSeq = n.seq;
      show(this.noticeEl, n.text, n.kind ?? 'warning');
    }
  }

  private applyTheme(): void {
    const name = resolveTheme(this.model.get('theme'));
    this.root.classList.toggle('ne-theme-dark', name === 'dark');
    this.root.classList.toggle('ne-theme-light', name === 'light');
    const font = getComputedStyle(this.root).fontFamily || 'system-ui, sans-serif';
    for (const c of this.charts) {
      c.setPalette(palette(name), font);
    }
  }
}

function render({ model, el: host }: RenderProps<CompressionModel>): () => void {
  dropTokenFromUrl();
  const view = new CompressionPage(model, host);
  return () => view.dispose();
}

export default { render };
