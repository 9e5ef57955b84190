import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TICK, drawAxes, plotBox } from '../src/charts/axes';
import { CanvasPainter } from '../src/charts/painter';
import { Scale } from '../src/charts/scale';

interface Drawn {
  text: string;
  x: number;
  y: number;
  align: string;
  baseline: string;
  rotate: number;
  color: string;
  font: string;
}

/**
 * A 2-D canvas context that records what is drawn: each stroked path as [x0, y0, x1, y1] segments with its colour,
 * each text where it lands (translations and rotations followed). Text is 7 px wide per character.
 */
class FakeContext {
  fillStyle = '';
  strokeStyle = '';
  lineWidth = 1;
  globalAlpha = 1;
  lineJoin = '';
  font = '';
  textAlign = 'left';
  textBaseline = 'alphabetic';
  readonly strokes: { color: string; segments: number[][] }[] = [];
  readonly texts: Drawn[] = [];
  private path: number[][] = [];
  private at: [number, number] = [0, 0];
  private state = { tx: 0, ty: 0, rotate: 0 };
  private readonly saved: { tx: number; ty: number; rotate: number }[] = [];

  setTransform(): void {}
  clearRect(): void {}
  fillRect(): void {}
  setLineDash(): void {}
  beginPath(): void {
    this.path = [];
  }
  moveTo(x: number, y: number): void {
    this.at = [x, y];
  }
  lineTo(x: number, y: number): void {
    this.path.push([...this.at, x, y]);
    this.at = [x, y];
  }
  stroke(): void {
    this.strokes.push({ color: this.strokeStyle, segments: this.path });
  }
  save(): void {
    this.saved.push({ ...this.state });
  }
  restore(): void {
    this.state = this.saved.pop() ?? { tx: 0, ty: 0, rotate: 0 };
  }
  translate(x: number, y: number): void {
    this.state.tx += x;
    this.state.ty += y;
  }
  rotate(rad: number): void {
    this.state.rotate += Math.round((rad * 180) / Math.PI);
  }
  fillText(text: string, x: number, y: number): void {
    this.texts.push({ text, x: this.state.tx + x, y: this.state.ty + y, align: this.textAlign,
      baseline: this.textBaseline, rotate: this.state.rotate, color: this.fillStyle, font: this.font });
  }
  measureText(s: string): { width: number } {
    return { width: 7 * s.length };
  }
}

function fakePainter(width: number, height: number): { p: CanvasPainter; ctx: FakeContext } {
  const ctx = new FakeContext();
  const canvas = { width, height, style: {}, getContext: () => ctx } as unknown as HTMLCanvasElement;
  return { p: new CanvasPainter(canvas, width, height, 1), ctx };
}

/** A linear scale from [lo, hi] onto pixels [a, b] with the given ticks and labels. */
function scale(lo: number, hi: number, a: number, b: number, ticks: number[], labels: string[]): Scale {
  return { map: v => a + ((v - lo) / (hi - lo)) * (b - a), ticks, format: v => labels[ticks.indexOf(v)], log: false };
}

const PAL = { grid: '#grid', axis: '#axis', muted: '#muted' };

/** A 200 x 100 canvas whose plot spans x 40..190 (the x axis from 0 to 100) and y 80..10 (0 to 1). */
function drawOnSmallCanvas(xTicks: number[], xLabels: string[], yTicks: number[], yLabels: string[], yAt?: number):
  FakeContext {
  const { p, ctx } = fakePainter(200, 100);
  const box = plotBox(p, { left: 40, right: 10, top: 10, bottom: 20 });
  drawAxes(p, box, scale(0, 100, 40, 190, xTicks, xLabels), scale(0, 1, 80, 10, yTicks, yLabels),
    { x: 'steps', y: 'loss', yAt }, PAL);
  return ctx;
}

test('the plot box is the canvas less its margins', () => {
  assert.deepEqual(plotBox({ width: 300, height: 200 }, { left: 62, right: 14, top: 10, bottom: 42 }),
    { x0: 62, x1: 286, y0: 158, y1: 10 });
});

test('grid lines at every tick, then the x and y axis lines, in their own colours', () => {
  const ctx = drawOnSmallCanvas([0, 50, 100], ['0', '50', '100'], [0, 1], ['0', '1']);
  assert.deepEqual(ctx.strokes, [
    { color: '#grid', segments: [[40, 80, 190, 80], [40, 10, 190, 10], [40, 80, 40, 10], [115, 80, 115, 10],
      [190, 80, 190, 10]] },
    { color: '#axis', segments: [[40, 80, 190, 80], [40, 80, 40, 10]] }
  ]);
});

test('tick labels sit by their ticks, and an x label at an end of the canvas moves in to stay whole', () => {
  // "a long label" is 84 px wide: centred on x = 40 it would start 2 px left of the canvas; "100" (21 px) centred
  // on x = 190 would end 0.5 px past its right edge at 200. Both move in (to their half width and 1 px more).
  const ctx = drawOnSmallCanvas([0, 50, 100], ['a long label', '50', '100'], [0, 0.5], ['0', '0.5']);
  const at = (text: string) => ctx.texts.find(t => t.text === text);
  assert.deepEqual([at('0')?.x, at('0')?.y, at('0')?.align, at('0')?.baseline], [34, 80, 'right', 'middle']);
  assert.deepEqual([at('0.5')?.x, at('0.5')?.y], [34, 45]);
  assert.deepEqual([at('50')?.x, at('50')?.y, at('50')?.align, at('50')?.baseline], [115, 85, 'center', 'top']);
  assert.equal(at('a long label')?.x, 43);
  assert.equal(at('100')?.x, 200 - 11.5);
  for (const label of ['a long label', '50', '100']) {
    const t = at(label)!;
    assert.ok(t.x - (7 * label.length) / 2 >= 0 && t.x + (7 * label.length) / 2 <= 200, label);
  }
  assert.ok(ctx.texts.every(t => t.color === '#muted' && t.font.startsWith(`${TICK}px`)));
});

test('the axis titles: x centred under the plot at the bottom, y turned a quarter at yAt (13 px unless given)', () => {
  for (const yAt of [undefined, 14]) {
    const ctx = drawOnSmallCanvas([], [], [], [], yAt);
    assert.deepEqual(ctx.texts.map(t => [t.text, t.x, t.y, t.align, t.baseline, t.rotate]), [
      ['steps', 115, 96, 'center', 'bottom', 0],
      ['loss', yAt ?? 13, 45, 'center', 'middle', -90]
    ]);
  }
});
