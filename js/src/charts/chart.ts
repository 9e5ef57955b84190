/**
 * The frame every chart shares: a title, a legend and a toolbar in the DOM (outside the data: text a person and a
 * screen reader can read), a canvas that is repainted at most once per animation frame when its data changed, and
 * exports of the same picture (PNG from the canvas, SVG from the same drawing code, CSV of the plotted numbers).
 */

import { MARK_CONTRAST, contrastRatio } from '../colormap';
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
  /** An area mark (bars, cells): a filled box rather than a line. */
  box?: boolean;
}

/** Pixels per CSS pixel of an exported PNG (sharp on a projector and in a paper). */
export const PNG_SCALE = 2;
const EXPORT_TITLE = 18;
const EXPORT_TEXT = 14;

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

/** A page button (``ne-btn`` plus ``cls``) that calls ``onClick``; ``title`` as its tooltip. */
export function button(label: string, cls: string, onClick: () => void, title = ''): HTMLButtonElement {
  const b = el('button', { type: 'button', class: `ne-btn ${cls}`.trim() }, label);
  if (title) {
    b.title = title;
  }
  b.addEventListener('click', onClick);
  return b;
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
  private legend: LegendItem[] = [];
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

  /** The edge a mark of this colour needs to stand out from the background (>= 3:1), or null if it needs none. */
  protected edgeFor(color: string): string | null {
    return contrastRatio(color, this.palette.bg) < MARK_CONTRAST ? this.palette.axis : null;
  }

  protected setLegend(items: LegendItem[]): void {
    this.legend = items;
    const key = JSON.stringify([this.palette.name, items]);
    if (this.legendEl.dataset.key === key) {
      return;
    }
    this.legendEl.dataset.key = key;
    this.legendEl.replaceChildren(
      ...items.map(it => {
        const li = el('li', { class: `ne-legend-item${it.faded ? ' ne-faded' : ''}` });
        const edge = this.edgeFor(it.color);
        const sw = el('span', { class: `ne-swatch${it.dash ? ' ne-dashed' : ''}${it.box ? ' ne-box' : ''}` +
          `${edge ? ' ne-edged' : ''}`, 'aria-hidden': 'true' });
        sw.style.setProperty('--swatch', it.color);
        if (edge) {
          sw.style.setProperty('--swatch-edge', edge);
        }
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

  /**
   * The chart as a figure that stands alone: its title and legend above the same drawing, at PNG_SCALE pixels per
   * CSS pixel (the size on screen, twice as sharp).
   */
  figureCanvas(scale = PNG_SCALE): HTMLCanvasElement {
    const w = this.width || Math.max(1, Math.floor(this.host.clientWidth)) || 600;
    const pal = this.palette;
    const out = document.createElement('canvas');
    const ctx = out.getContext('2d');
    if (!ctx) {
      throw new Error('no 2D canvas context');
    }
    // Legend rows: swatch and label, wrapped to the width.
    const font = (size: number, bold = false) => `${bold ? '600 ' : ''}${size}px ${this.font}`;
    ctx.font = font(EXPORT_TEXT);
    const rows: { it: LegendItem; x: number; row: number }[] = [];
    let x = 8;
    let row = 0;
    for (const it of this.legend) {
      const need = 24 + ctx.measureText(it.label).width + 16;
      if (x > 8 && x + need > w - 8) {
        x = 8;
        row++;
      }
      rows.push({ it, x, row });
      x += need;
    }
    const titleH = EXPORT_TITLE + 12;
    const lineH = EXPORT_TEXT + 8;
    const head = titleH + (this.legend.length ? (row + 1) * lineH : 0) + 4;
    out.width = Math.round(w * scale);
    out.height = Math.round((head + this.height) * scale);
    ctx.setTransform(scale, 0, 0, scale, 0, 0);
    ctx.fillStyle = pal.bg;
    ctx.fillRect(0, 0, w, head);
    ctx.fillStyle = pal.fg;
    ctx.font = font(EXPORT_TITLE, true);
    ctx.textBaseline = 'middle';
    ctx.fillText(this.titleEl.textContent ?? '', 8, titleH / 2 + 2);
    ctx.font = font(EXPORT_TEXT);
    for (const { it, x: lx, row: r } of rows) {
      const cy = titleH + r * lineH + lineH / 2;
      const edge = this.edgeFor(it.color);
      ctx.fillStyle = it.color;
      ctx.globalAlpha = it.faded ? 0.6 : 1;
      if (it.box) {
        ctx.fillRect(lx, cy - 6, 18, 12);
      } else if (it.dash) {
        ctx.fillRect(lx, cy - 1.5, 7, 3);
        ctx.fillRect(lx + 11, cy - 1.5, 7, 3);
      } else {
        ctx.fillRect(lx, cy - 1.5, 18, 3);
      }
      ctx.globalAlpha = 1;
      if (edge) {
        ctx.strokeStyle = edge;
        ctx.lineWidth = 1;
        ctx.strokeRect(lx - 0.5, it.box ? cy - 6.5 : cy - 2, 19, it.box ? 13 : 4);
      }
      ctx.fillStyle = it.faded ? pal.muted : pal.fg;
      ctx.fillText(it.label, lx + 24, cy);
    }
    const p = new CanvasPainter(out, w, this.height, scale, head);
    p.font = this.font;
    this.draw(p);
    out.dataset.head = String(head);
    return out;
  }

  exportPNG(): void {
    this.paintNow();
    download(this.fileName('png'), dataUrlToBlob(this.figureCanvas().toDataURL('image/png')));
  }

  exportSVG(): void {
    download(this.fileName('svg'), new Blob([this.svg()], { type: 'image/svg+xml' }));
  }

  exportCSV(): void {
    download(this.fileName('csv'), new Blob([this.csv()], { type: 'text/csv' }));
  }
}
