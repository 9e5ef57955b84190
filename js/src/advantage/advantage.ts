/**
 * The early-vs-late view's front end (mirror of nonlin_explorer/ui/advantage_controller.py), loaded by anywidget in
 * Jupyter and by Panel's AnyWidgetComponent in the served app.
 *
 * It opens on the stored result set the kernel sends with the first state: one line per schedule (test accuracy
 * against nonlinear units left, means over seeds), a band over seeds, every run a faded dot, and the gap (late minus
 * early) at matched count with its interval. New runs arrive in `live` and are drawn over the stored lines. A request
 * (Run, Cancel, a stored set, Export) is answered next to its control.
 */

import type { RenderProps } from '@anywidget/types';
import { BandChart, BandData, LivePoints } from '../charts/band_chart';
import { button, el } from '../charts/chart';
import { palette, resolveTheme } from '../charts/theme';
import { keepControlKeys } from '../own_keys';
import { dropTokenFromUrl, subscribe, watchTheme } from '../page_wiring';
import { Channel, Request } from '../transport';
import { AdvantageMessage, AdvantageModel, BandGap, StoredSet } from './types';

/** Palette series key of each schedule (the dashboard's train blue and lambda orange: told apart in both themes). */
export const SCHEDULE_COLORS: Record<string, string> = { early: 'train', late: 'sparsity' };
const SCHEDULE_LABELS: Record<string, string> = { early: 'early: prior from the start', late: 'late: prior at half-time' };

function field<T extends HTMLElement>(label: string, control: T): HTMLElement {
  const id = `ne-adv-${label.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${Math.random().toString(36).slice(2, 7)}`;
  control.id = id;
  const wrap = el('div', { class: 'ne-field' });
  wrap.append(el('label', { for: id }, label), control);
  return wrap;
}

function answerLine(): HTMLElement {
  const line = el('p', { class: 'ne-notice ne-answer', role: 'status', 'aria-live': 'polite' });
  line.hidden = true;
  return line;
}

function show(line: HTMLElement, text: string, kind: string): void {
  line.textContent = text;
  line.dataset.kind = kind;
  line.hidden = false;
}

/** "+4.7 ± 2.0 points" (accuracy points), or "n/a". */
export function gapText(g: BandGap | undefined): string {
  if (!g || g.mean === null) {
    return 'no matched counts';
  }
  const m = `${g.mean >= 0 ? '+' : '−'}${Math.abs(g.mean).toFixed(1)}`;
  return g.half === null ? `${m} points` : `${m} ± ${g.half.toFixed(1)} points`;
}

/** A chart's height for its width (taller on a big screen, within readable bounds). */
export function chartHeight(width: number): number {
  return Math.round(Math.min(560, Math.max(280, width * 0.68)));
}

export class AdvantagePage {
  readonly root: HTMLElement;
  private readonly channel: Channel;
  private readonly cleanups: (() => void)[] = [];
  private readonly acc: BandChart;
  private readonly gap: BandChart;
  private readonly statusEl: HTMLElement;
  private readonly labelEl: HTMLElement;
  private readonly headlineEl: HTMLElement;
  private readonly secondEl: HTMLElement;
  private readonly noticeEl: HTMLElement;
  private readonly setSel: HTMLSelectElement;
  private readonly sparsities: HTMLInputElement;
  private readonly seeds: HTMLInputElement;
  private readonly epochs: HTMLInputElement;
  private readonly configEl: HTMLElement;
  private readonly runBtn: HTMLButtonElement;
  private readonly cancelBtn: HTMLButtonElement;
  private readonly exportPath: HTMLInputElement;
  private readonly runAnswer: HTMLElement;
  private readonly setAnswer: HTMLElement;
  private readonly exportAnswer: HTMLElement;
  /** Requests waiting for their answer: id -> where it is shown and how to undo it. */
  private readonly pending = new Map<string, { at: HTMLElement; undo?: () => void }>();
  /** Where the next notice goes (the control whose request it answers). */
  private noticeAt: HTMLElement | null = null;
  private noticeSeq = 0;
  private readonly sizer: ResizeObserver;

  constructor(
    private readonly model: RenderProps<AdvantageModel>['model'],
    host: HTMLElement
  ) {
    this.channel = new Channel(model);
    this.root = el('div', { class: 'ne-dash ne-adv', 'data-lm-suppress-shortcuts': 'true' });
    const header = el('header', { class: 'ne-dash-header' });
    const title = el('h2', { class: 'ne-dash-title' }, model.get('heading') || 'Early vs late linearization');
    this.statusEl = el('p', { class: 'ne-dash-status ne-adv-status' });
    this.noticeEl = el('p', { class: 'ne-notice', role: 'status', 'aria-live': 'polite' });
    this.noticeEl.hidden = true;
    header.append(title, this.statusEl, this.noticeEl);

    const finding = el('section', { class: 'ne-adv-finding', 'aria-label': 'the finding of the stored set' });
    this.headlineEl = el('p', { class: 'ne-adv-headline' });
    this.secondEl = el('p', { class: 'ne-adv-second' });
    this.labelEl = el('p', { class: 'ne-adv-label' });
    finding.append(this.headlineEl, this.secondEl, this.labelEl);

    // Controls.
    const controls = el('aside', { class: 'ne-controls ne-adv-controls', 'aria-label': 'controls' });
    const stored = el('section', { class: 'ne-section' });
    stored.append(el('h3', { class: 'ne-section-title' }, 'Stored result set'));
    this.setSel = el('select');
    this.setSel.addEventListener('change', () => this.choose());
    this.setAnswer = answerLine();
    stored.append(field('Set (results/)', this.setSel), this.setAnswer);

    const runs = el('section', { class: 'ne-section' });
    runs.append(el('h3', { class: 'ne-section-title' }, 'New runs (drawn on top)'));
    this.sparsities = el('input', { type: 'text', autocomplete: 'off', inputmode: 'decimal' });
    this.seeds = el('input', { type: 'text', autocomplete: 'off', inputmode: 'numeric' });
    this.epochs = el('input', { type: 'text', autocomplete: 'off', inputmode: 'decimal' });
    this.configEl = el('p', { class: 'ne-adv-config' });
    const buttons = el('div', { class: 'ne-buttons' });
    this.runBtn = button('Run', 'ne-go', () => this.run(), 'Train early and late for every lambda and seed');
    this.cancelBtn = button('Cancel', 'ne-halt', () => this.send({ type: 'cancel' }, this.runAnswer),
      'Stop after the current step (finished runs stay)');
    this.runAnswer = answerLine();
    buttons.append(this.runBtn, this.cancelBtn);
    for (const input of [this.sparsities, this.seeds, this.epochs]) {
      input.addEventListener('keydown', e => {
        if (e.key === 'Enter') {
          this.run();
        }
      });
    }
    runs.append(field('Sparsities λ (comma-separated)', this.sparsities), field('Seeds', this.seeds),
      field('Epochs (both schedules)', this.epochs), buttons, this.runAnswer, this.configEl);

    const files = el('section', { class: 'ne-section ne-files' });
    files.append(el('h3', { class: 'ne-section-title' }, 'Export the new runs'));
    this.exportPath = el('input', { type: 'text', value: 'advantage.nc', autocomplete: 'off' });
    this.exportAnswer = answerLine();
    const ex = field('netCDF file', this.exportPath);
    ex.append(button('Export', 'ne-secondary', () =>
      this.send({ type: 'export', path: this.exportPath.value }, this.exportAnswer)), this.exportAnswer);
    files.append(ex);
    controls.append(stored, runs, files);

    // Charts.
    this.acc = new BandChart({ id: 'advantage-accuracy', title: 'Test accuracy against nonlinear units left',
      xLabel: 'nonlinear units', yLabel: 'test accuracy', symlog: 10 });
    this.gap = new BandChart({ id: 'advantage-gap', title: 'Late − early at matched count',
      xLabel: 'nonlinear units', yLabel: 'late − early (accuracy points)', symlog: 10 });
    const charts = el('div', { class: 'ne-adv-charts' });
    charts.append(this.acc.el, this.gap.el);
    const main = el('div', { class: 'ne-adv-main' });
    main.append(finding, charts);
    const body = el('div', { class: 'ne-adv-body' });
    body.append(controls, main);
    this.root.append(header, body);
    host.append(this.root);
    keepControlKeys(this.root);

    this.sizer = new ResizeObserver(entries => {
      for (const entry of entries) {
        const chart = [this.acc, this.gap].find(c => c.el === entry.target);
        chart?.setHeight(chartHeight(entry.contentRect.width));
      }
    });
    this.sizer.observe(this.acc.el);
    this.sizer.observe(this.gap.el);

    this.cleanups.push(subscribe<AdvantageMessage>(model, {
      'change:stored': () => this.draw(),
      'change:live': () => this.draw(),
      'change:progress': () => this.onProgress(),
      'change:settings': () => this.onSettings(),
      'change:options': () => this.onOptions(),
      'change:notice': () => this.onNotice(),
      'change:theme': () => this.applyTheme(),
      'msg:custom': msg => this.onMessage(msg)
    }), watchTheme(() => this.applyTheme()));

    const given = model.get('notice');
    // A notice given before this view opened is old news, unless it is about how the app was started.
    this.noticeSeq = given?.lasting ? 0 : given?.seq ?? 0;
    this.onOptions();
    this.onSettings();
    this.onProgress();
    this.applyTheme();
    this.draw();
    this.onNotice();
  }

  dispose(): void {
    this.cleanups.forEach(fn => fn());
    this.sizer.disconnect();
    this.acc.dispose();
    this.gap.dispose();
    this.root.remove();
  }

  // -- requests ----------------------------------------------------------------------------------------------
  private send(req: Request, at: HTMLElement, undo?: () => void): void {
    const id = this.channel.send(req);
    this.pending.set(id, { at, undo });
    this.noticeAt = at;
    show(at, 'working…', 'info');
  }

  private run(): void {
    this.send({ type: 'run', sparsities: this.sparsities.value, seeds: this.seeds.value, epochs: this.epochs.value },
      this.runAnswer, () => this.onSettings(true));
  }

  private choose(): void {
    const before = this.model.get('settings')?.set ?? '';
    this.send({ type: 'choose', set: this.setSel.value }, this.setAnswer, () => (this.setSel.value = before));
  }

  private onMessage(msg: AdvantageMessage): void {
    if (!msg || typeof msg !== 'object' || !this.channel.owns(msg.id)) {
      return;
    }
    this.channel.settle(msg.id);
    const req = this.pending.get(msg.id);
    this.pending.delete(msg.id);
    if (!req) {
      return;
    }
    if (msg.type === 'error') {
      req.undo?.();
      show(req.at, msg.message, 'danger');
    } else if (req.at.dataset.kind === 'info') {
      // Acted on; a notice with the details may follow (it replaces this).
      show(req.at, req.at === this.runAnswer ? 'started' : 'done', 'success');
    }
  }

  private onNotice(): void {
    const n = this.model.get('notice');
    if (!n || !n.text || (n.seq ?? 0) <= this.noticeSeq) {
      return;
    }
    this.noticeSeq = n.seq ?? 0;
    if (this.noticeAt) {
      show(this.noticeAt, n.text, n.kind ?? 'info');
    } else {
      show(this.noticeEl, n.text, n.kind ?? 'info');
    }
  }

  // -- state -------------------------------------------------------------------------------------------------
  private onOptions(): void {
    const sets = this.model.get('options')?.sets ?? [];
    const current = this.model.get('settings')?.set ?? '';
    const names = sets.includes(current) || !current ? sets : [...sets, current];
    if (this.setSel.options.length !== names.length || names.some((n, i) => this.setSel.options[i].value !== n)) {
      this.setSel.replaceChildren(...names.map(n => el('option', { value: n }, n)));
    }
    this.setSel.value = current;
    this.setSel.disabled = !names.length;
  }

  /** The form shows the last valid settings (`force`: even in a field being typed in, after a refusal). */
  private onSettings(force = false): void {
    const s = this.model.get('settings');
    if (!s) {
      return;
    }
    const put = (input: HTMLInputElement, value: string) => {
      if (force || document.activeElement !== input) {
        input.value = value;
      }
    };
    put(this.sparsities, s.sparsities ?? '');
    put(this.seeds, s.seeds ?? '');
    put(this.epochs, String(s.epochs ?? ''));
    this.configEl.textContent = s.config ? `Each run: ${s.config}.` : '';
    this.onOptions();
  }

  private onProgress(): void {
    const p = this.model.get('progress');
    const running = p?.state === 'running';
    this.runBtn.disabled = running;
    this.cancelBtn.disabled = !running;
    this.root.dataset.state = p?.state ?? 'idle';
    let text = 'New runs: none yet (the lines are the stored set).';
    if (p && p.total) {
      text = `New runs: ${p.state}, ${p.done} of ${p.total} runs, ${Math.round(p.elapsed)} s`;
      const g = this.model.get('live')?.gap;
      if (g && g.count !== null && g.count !== undefined) {
        text += `; their gap at matched count ${g.count >= 0 ? '+' : '−'}${Math.abs(100 * g.count).toFixed(1)} ` +
          `points (${g.count_points} matched count${g.count_points === 1 ? '' : 's'})`;
      } else if (p.done) {
        text += '; the two schedules reach no common count yet';
      }
      if (p.error) {
        text += `; ${p.error}`;
      }
    }
    this.statusEl.textContent = text;
  }

  private applyTheme(): void {
    const name = resolveTheme(this.model.get('theme'));
    this.root.classList.toggle('ne-theme-dark', name === 'dark');
    this.root.classList.toggle('ne-theme-light', name === 'light');
    const font = getComputedStyle(this.root).fontFamily || 'system-ui, sans-serif';
    this.acc.setPalette(palette(name), font);
    this.gap.setPalette(palette(name), font);
  }

  private draw(): void {
    const s: StoredSet = this.model.get('stored') ?? { ok: false, name: '', path: '', label: '', message: '' };
    const live = this.model.get('live');
    const points: LivePoints[] = Object.keys(SCHEDULE_COLORS).map(sch => {
      const mine = (live?.points ?? []).filter(p => p.schedule === sch);
      return { label: `new runs: ${sch}`, color: SCHEDULE_COLORS[sch], x: mine.map(p => p.nonlinear),
        y: mine.map(p => p.test_acc) };
    });
    this.root.dataset.stored = s.ok ? s.name : '';
    this.root.dataset.live = String((live?.points ?? []).length);
    if (!s.ok) {
      const why = `No stored result set to draw: ${s.message || 'none given'}`;
      this.headlineEl.textContent = why;
      this.secondEl.textContent = '';
      this.labelEl.textContent = '';
      const anyLive = points.some(p => p.x.length);
      this.acc.setData(anyLive ? { lines: [], points } : { lines: [], message: why });
      this.gap.setData({ lines: [], message: 'The gap needs a stored set (or finished runs of both schedules).' });
      return;
    }
    const seeds = s.seeds ?? 0;
    const few = s.few ?? null;
    const units = s.units ?? null;
    const lines = Object.entries(s.lines ?? {}).map(([sch, l]) => ({
      label: `${SCHEDULE_LABELS[sch] ?? sch} (mean of ${seeds} seeds)`, color: SCHEDULE_COLORS[sch] ?? 'batch',
      x: l.x, y: l.y, lo: l.lo, hi: l.hi, dotsX: l.run_x, dotsY: l.run_y
    }));
    const mark = few !== null ? { x: few, label: `1/6 of ${units ?? '?'} units` } : null;
    const data: BandData = { lines, points, bandLabel: `±1 s.d. over ${seeds} seeds`, mark,
      note: `Faded dots: the ${(s.sparsities ?? []).length * seeds} stored runs of each schedule (one per λ and seed); ` +
        'a line joins the means over seeds, one per λ.' };
    this.acc.setData(data);
    const g = s.gap;
    const level = Math.round(100 * (s.level ?? 0.95));
    this.gap.setData(g && g.x.length ? {
      lines: [{ label: `late − early (mean of ${seeds} seeds)`, color: 'fg', x: g.x, y: g.y, lo: g.lo, hi: g.hi,
        marks: false }],
      bandLabel: `${level}% interval over seeds`, zero: true, mark,
      note: 'Per seed, both schedules are interpolated onto the counts both reach (never extrapolated).'
    } : { lines: [], message: 'The two schedules never reach the same nonlinear count in this set.' });
    const f = s.gap_few;
    const m = s.gap_many;
    const fewText = few !== null ? `at most ${+few.toPrecision(3)} of ${units} units nonlinear` : 'few units';
    this.headlineEl.textContent = f && f.mean !== null ?
      `Late − early at matched count, ${fewText}: ${gapText(f)} of test accuracy (${level}% interval over ` +
      `${f.seeds} seeds: ${f.verdict}; late ahead for ${f.ahead} of ${f.seeds} seeds).` :
      `Late − early at matched count, ${fewText}: the schedules never match there in this set.`;
    this.headlineEl.dataset.verdict = f?.verdict ?? 'n/a';
    this.secondEl.textContent = m && m.mean !== null ?
      `With more units nonlinear (${m.from}–${m.to}): ${gapText(m)} (${m.verdict}).` : '';
    this.labelEl.textContent = `Stored set ${s.name} (${s.path}): ${s.label}.`;
  }
}

function render({ model, el: host }: RenderProps<AdvantageModel>): () => void {
  dropTokenFromUrl();
  const view = new AdvantagePage(model, host);
  return () => view.dispose();
}

export default { render };
