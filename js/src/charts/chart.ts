/**
 * The frame every chart shares: a title, a legend and a toolbar in the DOM (outside the data: text a person and a
 * screen reader can read), a canvas that is repainted at most once per animation frame when its data changed, and
 * exports of the same picture (PNG from the canvas, SVG from the same drawing code, CSV of the plotted numbers).
 */

import { CanvasPainter, Painter, SvgPainter } from './painter';
import { Palette, LIGHT } from './theme';

let frame = 0;
const dirty = new Set<Chart>();

function paintDirty(): void {
  frame = 0;
  const charts = Array.from(dirty);
  dirty.clear();
  for (const c of charts) {
    c.paintNow();
  }
}

export interface LegendItem {
  label: string;
  color: string;
  dash?: boolean;
  faded?: boolean;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {},
  text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      e.className = v;
    } else {
      e.setAttribute(k, v);
    }
  }
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}

/** A data: URL as a Blob (synchronously: a download started inside the click keeps the click's user activation). */
export function dataUrlToBlob(url: string): Blob {
  const [head, body] = url.split(',', 2);
  const mime = head.slice(5).split(';')[0];
  const bytes = atob(body);
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    out[i] = bytes.charCodeAt(i);
  }
  return new Blob([out], { type: mime });
}

/** Save `data` as a file named `name` (a download in the browser; nothing leaves the machine). */
export function download(name: string, data: Blob): void {
  const url = URL.createObjectURL(data);
  const a = el('a', { href: url, download: name });
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 5000);
}

export function csvText(header: string[], rows: (string | number | null | undefined)[][]): string {
  const cell = (v: string | number | null | undefined) => {
    if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) {
      return '';
    }
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header, ...rows].map(r => r.map(cell).join(',')).join('\n') + '\n';
}

export abstract class Chart {
  readonly el: HTMLElement;
  protected readonly titleEl: HTMLElement;
  protected readonly legendEl: HTMLElement;
  protected readonly toolbar: HTMLElement;
  protected readonly note: HTMLElement;
  protected readonly canvas: HTMLCanvasElement;
  private readonly host: HTMLElement;
  private readonly resize: ResizeObserver;
  protected palette: Palette = LIGHT;
  protected font = 'system-ui, sans-serif';
  private width = 0;
  paints = 0;

  constructor(
    readonly id: string,
    title: string,
    protected height = 220
  ) {
    this.el = el('figure', { class: 'ne-chart', 'data-chart': id });
    const head = el('figcaption', { class: 'ne-chart-head' });
    this.titleEl = el('h3', { class: 'ne-chart-title' }, title);
    this.toolbar = el('div', { class: 'ne-chart-tools', role: 'toolbar', 'aria-label': `${title}: export` });
    head.append(this.titleEl, this.toolbar);
    this.legendEl = el('ul', { class: 'ne-legend-list', 'aria-label': `${title}: legend` });
    this.host = el('div', { class: 'ne-chart-canvas' });
    this.canvas = el('canvas', { role: 'img', 'aria-label': title });
    this.host.append(this.canvas);
    this.note = el('p', { class: 'ne-chart-note' });
    this.note.hidden = true;
    this.el.append(head, this.legendEl, this.host, this.note);
    for (const [label, fn] of [
      ['PNG', () => this.exportPNG()],
      ['SVG', () => this.exportSVG()],
      ['CSV', () => this.exportCSV()]
    ] as const) {
      const b = el('button', { type: 'button', class: 'ne-tool', title: `Save this chart as ${label}`,
        'aria-label': `${title}: save ${label}` }, label);
      b.addEventListener('click', fn);
      this.toolbar.append(b);
    }
    this.resize = new ResizeObserver(() => {
      const w = Math.floor(this.host.clientWidth);
      if (w !== this.width) {
        this.width = w;
        this.invalidate();
      }
    });
    this.resize.observe(this.host);
  }

  dispose(): void {
    this.resize.disconnect();
    dirty.delete(this);
  }

  setPalette(p: Palette, font: string): void {
    this.palette = p;
    this.font = font;
    this.invalidate();
  }

  setHeight(h: number): void {
    if (h !== this.height) {
      this.height = h;
      this.invalidate();
    }
  }

  /** Repaint at the next animation frame (once, however often it is called). */
  invalidate(): void {
    dirty.add(this);
    if (!frame) {
      frame = requestAnimationFrame(paintDirty);
    }
  }

  paintNow(): void {
    const w = this.width || Math.floor(this.host.clientWidth);
    if (w <= 0 || !this.el.isConnected) {
      return;
    }
    this.width = w;
    const p = new CanvasPainter(this.canvas, w, this.height);
    p.font = this.font;
    this.draw(p);
    this.paints++;
    this.el.dataset.paints = String(this.paints);
  }

  protected setLegend(items: LegendItem[]): void {
    const key = JSON.stringify(items);
    if (this.legendEl.dataset.key === key) {
      return;
    }
    this.legendEl.dataset.key = key;
    this.legendEl.replaceChildren(
      ...items.map(it => {
        const li = el('li', { class: `ne-legend-item${it.faded ? ' ne-faded' : ''}` });
        const sw = el('span', { class: `ne-swatch${it.dash ? ' ne-dashed' : ''}`, 'aria-hidden': 'true' });
        sw.style.setProperty('--swatch', it.color);
        li.append(sw, document.createTextNode(it.label));
        return li;
      })
    );
  }

  protected setNote(text: string): void {
    this.note.hidden = !text;
    if (this.note.textContent !== text) {
      this.note.textContent = text;
    }
  }

  protected abstract draw(p: Painter): void;
  protected abstract csvRows(): { header: string[]; rows: (string | number | null)[][] };

  fileName(ext: string): string {
    return `nonlin_explorer-${this.id}.${ext}`;
  }

  svg(): string {
    const p = new SvgPainter(this.width || 600, this.height);
    p.font = this.font;
    this.draw(p);
    return p.toString();
  }

  csv(): string {
    const { header, rows } = this.csvRows();
    return csvText(header, rows);
  }

  exportPNG(): void {
    this.paintNow();
    download(this.fileName('png'), dataUrlToBlob(this.canvas.toDataURL('image/png')));
  }

  exportSVG(): void {
    download(this.fileName('svg'), new Blob([this.svg()], { type: 'image/svg+xml' }));
  }

  exportCSV(): void {
    download(this.fileName('csv'), new Blob([this.csv()], { type: 'text/csv' }));
  }
}
