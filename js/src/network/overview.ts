/**
 * The overview of a big network: one strip per gate layer (height by its width in units, binned into pixel rows),
 * residual blocks as bands with skip arcs, every layer labelled. Chosen when the units would be drawn smaller than
 * a few pixels; a click on a strip zooms into that layer's units. Pure: sizes in, positions out (CSS pixels).
 */

import { LABEL_PX, type BlockBand, type Skip, skipArc } from '../geometry';
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
  // A block that starts at the first layer takes its skip from the input: room on the left for the arc's foot.
  const first = blocks.some(b => b.first === 0) ? 1.2 : 0;
  const gaps: number[] = layers.map((l, i) => (i === 0 ? first : l.block !== layers[i - 1].block ? 1.2 : 0.5));
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
    const x0 = from >= 0 ? left[from] + strip / 2 : PAD + strip * 0.4;
    const y0 = (from >= 0 ? tops[from] : tops[b.first]) - 4;
    return skipArc(x0, y0, left[b.last] + strip / 2, tops[b.last] - 4, tops.slice(Math.max(0, from), b.last + 1),
      b.projection);
  });
  return { width, height: top + plot + LABELS, strip, left, top: tops, bottom: bottoms, blockBands, skips,
    labelTop: top + plot + 6, labelSize: LABEL_PX };
}
