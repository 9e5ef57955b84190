/**
 * One drawing interface, two targets: a canvas (what the page shows, repainted at frame rate) and an SVG string
 * (the same picture, exported). Charts draw through a Painter only, so the export is the picture.
 */

export interface TextStyle {
  color: string;
  size: number;
  align?: 'left' | 'center' | 'right';
  baseline?: 'top' | 'middle' | 'bottom' | 'alphabetic';
  weight?: 'normal' | 'bold';
  /** Rotation in degrees around the anchor. */
  rotate?: number;
}

export interface LineStyle {
  color: string;
  width: number;
  dash?: number[];
  alpha?: number;
}

export interface Painter {
  readonly width: number;
  readonly height: number;
  font: string;
  clear(color: string): void;
  /** A polyline; NaN or null coordinates break it into pieces. */
  polyline(xs: ArrayLike<number>, ys: ArrayLike<number>, style: LineStyle): void;
  /** Axis-aligned line segments (grid lines, ticks): [x0, y0, x1, y1] per segment. */
  segments(coords: number[], style: LineStyle): void;
  rect(x: number, y: number, w: number, h: number, fill: string, alpha?: number): void;
  strokeRect(x: number, y: number, w: number, h: number, style: LineStyle): void;
  /** Filled circles of radius r (one path), with an outline. */
  dots(xs: ArrayLike<number>, ys: ArrayLike<number>, r: number, fill: string, stroke: string): void;
  /** The area between two curves over the same xs (a band), filled; NaN points break it into pieces. */
  area(xs: ArrayLike<number>, lo: ArrayLike<number>, hi: ArrayLike<number>, fill: string, alpha?: number): void;
  text(x: number, y: number, s: string, style: TextStyle): void;
  measure(s: string, size: number): number;
  clip(x: number, y: number, w: number, h: number): void;
  unclip(): void;
}

/** Runs of consecutive indices where x, lo and hi are all finite (each run is one closed band). */
export function bandRuns(xs: ArrayLike<number>, lo: ArrayLike<number>, hi: ArrayLike<number>): number[][] {
  const runs: number[][] = [];
  let cur: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    if (Number.isFinite(xs[i]) && Number.isFinite(lo[i]) && Number.isFinite(hi[i])) {
      cur.push(i);
    } else if (cur.length) {
      runs.push(cur);
      cur = [];
    }
  }
  if (cur.length) {
    runs.push(cur);
  }
  return runs.filter(r => r.length > 1);
}

export class CanvasPainter implements Painter {
  font = 'system-ui, sans-serif';
  private readonly ctx: CanvasRenderingContext2D;

  /**
   * Draws a width x height picture at `scale` device pixels per CSS pixel (the screen's by default). With `top`, the
   * canvas is left as it is and the picture goes `top` CSS pixels down it (an export composes a figure this way).
   */
  constructor(
    readonly canvas: HTMLCanvasElement,
    readonly width: number,
    readonly height: number,
    scale = window.devicePixelRatio || 1,
    top?: number
  ) {
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    if (top === undefined && (canvas.width !== w || canvas.height !== h)) {
      canvas.width = w;
      canvas.height = h;
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
    }
    const ctx = canvas.getContext('2d');
    if (!ctx) {
      throw new Error('no 2D canvas context');
    }
    this.ctx = ctx;
    ctx.setTransform(scale, 0, 0, scale, 0, (top ?? 0) * scale);
  }

  clear(color: string): void {
    this.ctx.clearRect(0, 0, this.width, this.height);
    if (color !== 'transparent') {
      this.ctx.fillStyle = color;
      this.ctx.fillRect(0, 0, this.width, this.height);
    }
  }

  private stroke(style: LineStyle): void {
    const c = this.ctx;
    c.strokeStyle = style.color;
    c.lineWidth = style.width;
    c.setLineDash(style.dash ?? []);
    c.globalAlpha = style.alpha ?? 1;
    c.lineJoin = 'round';
    c.stroke();
    c.globalAlpha = 1;
  }

  polyline(xs: ArrayLike<number>, ys: ArrayLike<number>, style: LineStyle): void {
    const c = this.ctx;
    c.beginPath();
    let down = false;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i];
      const y = ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        down = false;
        continue;
      }
      if (down) {
        c.lineTo(x, y);
      } else {
        c.moveTo(x, y);
        down = true;
      }
    }
    this.stroke(style);
  }

  segments(coords: number[], style: LineStyle): void {
    const c = this.ctx;
    c.beginPath();
    for (let i = 0; i + 3 < coords.length; i += 4) {
      c.moveTo(coords[i], coords[i + 1]);
      c.lineTo(coords[i + 2], coords[i + 3]);
    }
    this.stroke(style);
  }

  rect(x: number, y: number, w: number, h: number, fill: string, alpha = 1): void {
    this.ctx.globalAlpha = alpha;
    this.ctx.fillStyle = fill;
    this.ctx.fillRect(x, y, w, h);
    this.ctx.globalAlpha = 1;
  }

  strokeRect(x: number, y: number, w: number, h: number, style: LineStyle): void {
    this.ctx.beginPath();
    this.ctx.rect(x, y, w, h);
    this.stroke(style);
  }

  dots(xs: ArrayLike<number>, ys: ArrayLike<number>, r: number, fill: string, stroke: string): void {
    const c = this.ctx;
    c.beginPath();
    for (let i = 0; i < xs.length; i++) {
      c.moveTo(xs[i] + r, ys[i]);
      c.arc(xs[i], ys[i], r, 0, 2 * Math.PI);
    }
    c.fillStyle = fill;
    c.fill();
    c.strokeStyle = stroke;
    c.lineWidth = 0.8;
    c.setLineDash([]);
    c.stroke();
  }

  area(xs: ArrayLike<number>, lo: ArrayLike<number>, hi: ArrayLike<number>, fill: string, alpha = 1): void {
    const c = this.ctx;
    c.beginPath();
    for (const run of bandRuns(xs, lo, hi)) {
      run.forEach((i, k) => (k ? c.lineTo(xs[i], hi[i]) : c.moveTo(xs[i], hi[i])));
      for (let k = run.length - 1; k >= 0; k--) {
        c.lineTo(xs[run[k]], lo[run[k]]);
      }
      c.closePath();
    }
    c.globalAlpha = alpha;
    c.fillStyle = fill;
    c.fill();
    c.globalAlpha = 1;
  }

  text(x: number, y: number, s: string, style: TextStyle): void {
    const c = this.ctx;
    c.save();
    c.fillStyle = style.color;
    c.font = `${style.weight === 'bold' ? '600 ' : ''}${style.size}px ${this.font}`;
    c.textAlign = style.align ?? 'left';
    c.textBaseline = style.baseline ?? 'alphabetic';
    c.translate(x, y);
    if (style.rotate) {
      c.rotate((style.rotate * Math.PI) / 180);
    }
    c.fillText(s, 0, 0);
    c.restore();
  }

  measure(s: string, size: number): number {
    this.ctx.font = `${size}px ${this.font}`;
    return this.ctx.measureText(s).width;
  }

  clip(x: number, y: number, w: number, h: number): void {
    this.ctx.save();
    this.ctx.beginPath();
    this.ctx.rect(x, y, w, h);
    this.ctx.clip();
  }

  unclip(): void {
    this.ctx.restore();
  }
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const r = (v: number) => (Math.round(v * 100) / 100).toString();

/** Collects the same drawing as SVG elements. */
export class SvgPainter implements Painter {
  font = 'system-ui, sans-serif';
  private readonly parts: string[] = [];
  private clips = 0;
  private open = 0;
  private measurer: CanvasRenderingContext2D | null = null;

  constructor(
    readonly width: number,
    readonly height: number
  ) {}

  clear(color: string): void {
    if (color !== 'transparent') {
      this.parts.push(`<rect x="0" y="0" width="${r(this.width)}" height="${r(this.height)}" fill="${esc(color)}"/>`);
    }
  }

  private strokeAttrs(style: LineStyle): string {
    return `fill="none" stroke="${esc(style.color)}" stroke-width="${r(style.width)}"` +
      (style.dash && style.dash.length ? ` stroke-dasharray="${style.dash.join(' ')}"` : '') +
      (style.alpha !== undefined && style.alpha < 1 ? ` stroke-opacity="${r(style.alpha)}"` : '') +
      ' stroke-linejoin="round"';
  }

  polyline(xs: ArrayLike<number>, ys: ArrayLike<number>, style: LineStyle): void {
    let d = '';
    let down = false;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i];
      const y = ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        down = false;
        continue;
      }
      d += `${down ? 'L' : 'M'}${r(x)} ${r(y)}`;
      down = true;
    }
    if (d) {
      this.parts.push(`<path d="${d}" ${this.strokeAttrs(style)}/>`);
    }
  }

  segments(coords: number[], style: LineStyle): void {
    let d = '';
    for (let i = 0; i + 3 < coords.length; i += 4) {
      d += `M${r(coords[i])} ${r(coords[i + 1])}L${r(coords[i + 2])} ${r(coords[i + 3])}`;
    }
    if (d) {
      this.parts.push(`<path d="${d}" ${this.strokeAttrs(style)}/>`);
    }
  }

  rect(x: number, y: number, w: number, h: number, fill: string, alpha = 1): void {
    this.parts.push(`<rect x="${r(x)}" y="${r(y)}" width="${r(w)}" height="${r(h)}" fill="${esc(fill)}"` +
      `${alpha < 1 ? ` fill-opacity="${r(alpha)}"` : ''}/>`);
  }

  strokeRect(x: number, y: number, w: number, h: number, style: LineStyle): void {
    this.parts.push(`<rect x="${r(x)}" y="${r(y)}" width="${r(w)}" height="${r(h)}" ${this.strokeAttrs(style)}/>`);
  }

  dots(xs: ArrayLike<number>, ys: ArrayLike<number>, radius: number, fill: string, stroke: string): void {
    for (let i = 0; i < xs.length; i++) {
      this.parts.push(`<circle cx="${r(xs[i])}" cy="${r(ys[i])}" r="${r(radius)}" fill="${esc(fill)}" ` +
        `stroke="${esc(stroke)}" stroke-width="0.8"/>`);
    }
  }

  area(xs: ArrayLike<number>, lo: ArrayLike<number>, hi: ArrayLike<number>, fill: string, alpha = 1): void {
    let d = '';
    for (const run of bandRuns(xs, lo, hi)) {
      run.forEach((i, k) => (d += `${k ? 'L' : 'M'}${r(xs[i])} ${r(hi[i])}`));
      for (let k = run.length - 1; k >= 0; k--) {
        d += `L${r(xs[run[k]])} ${r(lo[run[k]])}`;
      }
      d += 'Z';
    }
    if (d) {
      this.parts.push(`<path d="${d}" fill="${esc(fill)}"${alpha < 1 ? ` fill-opacity="${r(alpha)}"` : ''}/>`);
    }
  }

  text(x: number, y: number, s: string, style: TextStyle): void {
    const anchor = style.align === 'center' ? 'middle' : style.align === 'right' ? 'end' : 'start';
    const base = { top: 'hanging', middle: 'central', bottom: 'text-after-edge', alphabetic: 'alphabetic' }[
      style.baseline ?? 'alphabetic'
    ];
    const rot = style.rotate ? ` transform="rotate(${r(style.rotate)} ${r(x)} ${r(y)})"` : '';
    this.parts.push(`<text x="${r(x)}" y="${r(y)}" fill="${esc(style.color)}" font-size="${style.size}" ` +
      `font-family="${esc(this.font)}" text-anchor="${anchor}" dominant-baseline="${base}"` +
      `${style.weight === 'bold' ? ' font-weight="600"' : ''}${rot}>${esc(s)}</text>`);
  }

  measure(s: string, size: number): number {
    if (!this.measurer) {
      this.measurer = document.createElement('canvas').getContext('2d');
    }
    if (!this.measurer) {
      return s.length * size * 0.6;
    }
    this.measurer.font = `${size}px ${this.font}`;
    return this.measurer.measureText(s).width;
  }

  clip(x: number, y: number, w: number, h: number): void {
    const id = `c${++this.clips}-${Math.random().toString(36).slice(2, 7)}`;
    this.parts.push(`<clipPath id="${id}"><rect x="${r(x)}" y="${r(y)}" width="${r(w)}" height="${r(h)}"/></clipPath>` +
      `<g clip-path="url(#${id})">`);
    this.open++;
  }

  unclip(): void {
    if (this.open > 0) {
      this.parts.push('</g>');
      this.open--;
    }
  }

  toString(): string {
    while (this.open > 0) {
      this.unclip();
    }
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${r(this.width)}" height="${r(this.height)}" ` +
      `viewBox="0 0 ${r(this.width)} ${r(this.height)}">${this.parts.join('')}</svg>`;
  }
}
