/**
 * Where every unit goes: one column per gate layer (wrapped into sub-columns past `maxRows` units),
 * centred vertically, residual blocks as shaded bands with an arc per skip connection. Pure: sizes in,
 * positions out (CSS pixels).
 */

import type { BlockInfo, LayerInfo } from './network_view_types';

/** A residual block's shaded band. */
export interface BlockBand { left: number; right: number; top: number; bottom: number }
/**
 * A skip connection's arc: a quadratic curve from (x0, y0) over the control point (cx, cy) to (x1, y1), above the
 * columns it spans and inside the drawing; `projection`: the skip has a 1x1 conv / linear map.
 */
export interface Skip { x0: number; y0: number; cx: number; cy: number; x1: number; y1: number; projection: boolean }

export interface Geometry {
  /** Cell size (square) and the inset painted inside it. */
  cell: number;
  inset: number;
  width: number;
  height: number;
  /** Top-left corner of every unit's cell. */
  x: Float32Array;
  y: Float32Array;
  /** Per layer: left edge, right edge, top, bottom, rows (units per sub-column). */
  layerLeft: number[];
  layerRight: number[];
  layerTop: number[];
  layerBottom: number[];
  layerRows: number[];
  /** Per block: shaded band and skip arc (start x/y, end x/y). */
  blockBands: BlockBand[];
  skips: Skip[];
  /** Top of the label strip under the columns. */
  labelTop: number;
}

export interface GeometryOptions {
  /** Width available (CSS px). */
  width: number;
  /** Height available (present mode), or 0: the view picks its height, up to `targetHeight`. */
  height: number;
  /** Units per sub-column before a layer wraps into the next one; 0: chosen for the biggest cells. */
  maxRows: number;
  targetHeight?: number;
  minCell?: number;
  maxCell?: number;
}

const PAD = 8;
/** Layer labels' text size in px (readable from the back of a room, like the widgets' 14 px). */
export const LABEL_PX = 14;
const LABELS = LABEL_PX + 6;
const GAP = 0.6; // gap between layers, in cells
const BLOCK_GAP = 0.8; // extra gap between blocks, in cells

export function layoutNetwork(layers: LayerInfo[], blocks: BlockInfo[], opts: GeometryOptions): Geometry {
  const minCell = opts.minCell ?? 4;
  const maxCell = opts.maxCell ?? 28;
  const top = blocks.length ? 30 : 8;
  // Gaps (in cells) before each layer.
  // A block that starts at the first layer takes its skip from the input: room on the left for the arc's foot.
  const inputSkip = blocks.some(b => b.first === 0);
  const gapBefore = layers.map((l, i) => {
    if (i === 0) {
      return inputSkip ? GAP + BLOCK_GAP : 0;
    }
    const newBlock = l.block !== layers[i - 1].block;
    return GAP + (newBlock ? BLOCK_GAP : 0);
  });
  const gaps = gapBefore.reduce((a, b) => a + b, 0);
  const height = opts.height > 0 ? opts.height : (opts.targetHeight ?? 420);
  const fit = (maxRows: number) => {
    const cols = layers.map(l => Math.ceil(l.units / maxRows));
    const rows = layers.map((l, i) => Math.ceil(l.units / cols[i]));
    const maxR = Math.max(1, ...rows);
    const widthInCells = cols.reduce((a, b) => a + b, 0) + gaps;
    const cell = Math.min(maxCell, (opts.width - 2 * PAD) / Math.max(1, widthInCells),
      (height - top - LABELS - PAD) / maxR);
    return { cols, rows, maxR, cell };
  };
  // Wrap the biggest layer into k sub-columns, for the k that gives the biggest cells (fewest on ties).
  const biggest = Math.max(1, ...layers.map(l => l.units));
  let best = fit(opts.maxRows > 0 ? opts.maxRows : biggest);
  for (let k = 2; opts.maxRows <= 0 && k <= 16 && Math.ceil(biggest / k) >= 4; k++) {
    const candidate = fit(Math.ceil(biggest / k));
    if (candidate.cell > best.cell + 0.25) {
      best = candidate;
    }
  }
  const { cols, rows, maxR } = best;
  let cell = Math.max(minCell, best.cell);
  if (cell >= 6) {
    cell = Math.floor(cell);
  }
  const inset = cell >= 8 ? 1 : cell >= 5 ? 0.5 : 0;

  const n = layers.reduce((a, l) => a + l.units, 0);
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  const layerLeft: number[] = [];
  const layerRight: number[] = [];
  const layerTop: number[] = [];
  const layerBottom: number[] = [];
  const columnsHeight = maxR * cell;
  let cursor = PAD;
  layers.forEach((layer, li) => {
    cursor += gapBefore[li] * cell;
    const r = rows[li];
    const t = top + (columnsHeight - r * cell) / 2;
    layerLeft.push(cursor);
    layerTop.push(t);
    layerBottom.push(t + r * cell);
    for (let u = 0; u < layer.units; u++) {
      const i = layer.offset + u;
      x[i] = cursor + Math.floor(u / r) * cell;
      y[i] = t + (u % r) * cell;
    }
    cursor += cols[li] * cell;
    layerRight.push(cursor);
  });
  const width = Math.max(opts.width, cursor + PAD);
  const labelTop = top + columnsHeight + 4;

  const blockBands = blocks.map(b => {
    const tops = layerTop.slice(b.first, b.last + 1);
    const bottoms = layerBottom.slice(b.first, b.last + 1);
    return {
      left: layerLeft[b.first] - (GAP * cell) / 2,
      right: layerRight[b.last] + (GAP * cell) / 2,
      top: Math.min(...tops) - 3,
      bottom: Math.max(...bottoms) + 3
    };
  });
  const skips = blocks.map(b => {
    const from = b.first - 1;
    // From the column before the block (or, for the input, from beside the band) to the gate after the addition.
    const x0 = from >= 0 ? (layerLeft[from] + layerRight[from]) / 2 : PAD + (GAP * cell) / 2;
    const y0 = (from >= 0 ? layerTop[from] : layerTop[b.first]) - 4;
    const x1 = (layerLeft[b.last] + layerRight[b.last]) / 2;
    return skipArc(x0, y0, x1, layerTop[b.last] - 4, layerTop.slice(Math.max(0, from), b.last + 1), b.projection);
  });
  return {
    cell,
    inset,
    width,
    height: labelTop + LABELS,
    x,
    y,
    layerLeft,
    layerRight,
    layerTop,
    layerBottom,
    layerRows: rows,
    blockBands,
    skips,
    labelTop
  };
}

/** A low arch from (x0, y0) to (x1, y1) over columns whose tops are `spannedTops`; never above the drawing. */
export function skipArc(x0: number, y0: number, x1: number, y1: number, spannedTops: number[],
  projection: boolean): Skip {
  const rise = Math.max(8, Math.min(24, 0.4 * (x1 - x0)));
  const cy = Math.max(2, Math.min(y0, y1, ...spannedTops.map(t => t - 4)) - 2 * rise);
  return { x0, y0, cx: (x0 + x1) / 2, cy, x1, y1, projection };
}

/** Units whose cells intersect a rectangle (for shift-drag selection). */
export function unitsInRect(g: Geometry, x0: number, y0: number, x1: number, y1: number): number[] {
  const left = Math.min(x0, x1);
  const right = Math.max(x0, x1);
  const top = Math.min(y0, y1);
  const bottom = Math.max(y0, y1);
  const out: number[] = [];
  for (let i = 0; i < g.x.length; i++) {
    if (g.x[i] + g.cell > left && g.x[i] < right && g.y[i] + g.cell > top && g.y[i] < bottom) {
      out.push(i);
    }
  }
  return out;
}
