/**
 * The overview of a big network: one strip per gate layer (height by its width in units, binned into pixel rows),
 * residual blocks as bands with skip arcs, every layer labelled. Chosen when the units would be drawn smaller than
 * a few pixels; a click on a strip zooms into that layer's units. Pure: sizes in, positions out (CSS pixels).
 */

import { LABEL_PX, type BlockBand, type Skip } from '../geometry';
import type { BlockInfo, LayerInfo } from '../network_view_types';

export interface Overview {
  width: number;
  height: number;
  strip: number;
  /** Per layer: left edge, top and bottom of its strip. */
  left: number[];
  top: number[];
  bottom: number[];
  blockBands: BlockBand[];
  skips: Skip[];
  /** Top of the label strip, and the label font size. */
  labelTop: number;
  labelSize: number;
}

const PAD = 10;
const LABELS = 110;

export function layoutOverview(layers: LayerInfo[], blocks: BlockInfo[], opts: { width: number; height: number })
  : Overview {
  const top = blocks.length ? 30 : 10;
  const gaps: number[] = layers.map((l, i) => (i === 0 ? 0 : l.block !== layers[i - 1].block ? 1.2 : 0.5));
  const slots = layers.length + gaps.reduce((a, b) => a + b, 0);
  const strip = Math.max(8, Math.min(40, Math.floor((opts.width - 2 * PAD) / Math.max(1, slots))));
  const plot = Math.max(120, (opts.height > 0 ? opts.height : 420) - top - LABELS - PAD);
  const biggest = Math.max(1, ...layers.map(l => l.units));
  const left: number[] = [];
  const tops: number[] = [];
  const bottoms: number[] = [];
  let cursor = PAD;
  layers.forEach((layer, li) => {
    cursor += gaps[li] * strip;
    const h = Math.max(24, plot * Math.sqrt(layer.units / biggest)); // sqrt: small layers stay visible
    const t = top + (plot - h) / 2;
    left.push(cursor);
    tops.push(t);
    bottoms.push(t + h);
    cursor += strip;
  });
  const width = Math.max(opts.width, cursor + PAD);
  const blockBands = blocks.map(b => ({
    left: left[b.first] - strip * 0.25,
    right: left[b.last] + strip * 1.25,
    top: Math.min(...tops.slice(b.first, b.last + 1)) - 3,
    bottom: Math.max(...bottoms.slice(b.first, b.last + 1)) + 3
  }));
  const skips = blocks.map(b => {
    const from = b.first - 1;
    return {
      x0: from >= 0 ? left[from] + strip / 2 : PAD / 2,
      y0: from >= 0 ? tops[from] : top + plot / 2,
      x1: left[b.last] + strip / 2,
      y1: tops[b.last],
      projection: b.projection
    };
  });
  return { width, height: top + plot + LABELS, strip, left, top: tops, bottom: bottoms, blockBands, skips,
    labelTop: top + plot + 6, labelSize: LABEL_PX };
}
