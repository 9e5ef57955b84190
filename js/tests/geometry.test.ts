import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LABEL_PX, layoutNetwork, type Skip, unitsInRect } from '../src/geometry';
import type { BlockInfo, LayerInfo } from '../src/network_view_types';

const layer = (name: string, units: number, offset: number, block = -1): LayerInfo => ({ name, units, offset, block });
const close = (a: number, b: number) => Math.abs(a - b) < 1e-4;

test('two plain layers: one column each, centred, the cell as big as allowed', () => {
  const g = layoutNetwork([layer('a', 4, 0), layer('b', 2, 4)], [], { width: 200, height: 0, maxRows: 0 });
  assert.equal(g.cell, 28);
  assert.equal(g.inset, 1);
  assert.deepEqual(Array.from(g.x.slice(0, 4)), [8, 8, 8, 8]);
  assert.deepEqual(Array.from(g.y.slice(0, 4)), [8, 36, 64, 92]);
  assert.ok(close(g.x[4], 8 + 28 + 0.6 * 28) && close(g.x[5], g.x[4]));
  assert.deepEqual(Array.from(g.y.slice(4)), [36, 64]); // the shorter layer sits in the middle
  assert.deepEqual(g.layerRows, [4, 2]);
  assert.equal(g.width, 200);
  assert.equal(g.labelTop, 8 + 4 * 28 + 4);
  assert.equal(g.height, g.labelTop + LABEL_PX + 6); // room for 14 px layer labels
  assert.equal(LABEL_PX, 14);
});

test('maxRows wraps a layer into sub-columns', () => {
  const g = layoutNetwork([layer('a', 4, 0)], [], { width: 300, height: 0, maxRows: 2 });
  assert.deepEqual(g.layerRows, [2]);
  assert.equal(g.x[0], g.x[1]);
  assert.equal(g.x[2], g.x[0] + g.cell);
  assert.equal(g.y[2], g.y[0]);
});

test('no two cells overlap and every cell lies inside the drawing', () => {
  const layers = [layer('a', 37, 0), layer('b', 100, 37, 0), layer('c', 12, 137, 0), layer('d', 5, 149)];
  const blocks: BlockInfo[] = [{ name: 'blk', first: 1, last: 2, projection: false }];
  const g = layoutNetwork(layers, blocks, { width: 640, height: 0, maxRows: 0 });
  const seen = new Set<string>();
  for (let i = 0; i < g.x.length; i++) {
    const key = `${Math.round(g.x[i] / g.cell)},${Math.round(g.y[i] / g.cell)}`;
    assert.ok(!seen.has(key), `unit ${i} overlaps another`);
    seen.add(key);
    assert.ok(g.x[i] >= 0 && g.x[i] + g.cell <= g.width && g.y[i] >= 0 && g.y[i] + g.cell <= g.labelTop);
  }
});

test('a residual block gets a band around its layers and a skip arc from the layer before it', () => {
  const layers = [layer('a', 4, 0), layer('b', 4, 4, 0), layer('c', 4, 8, 0)];
  const g = layoutNetwork(layers, [{ name: 'blk', first: 1, last: 2, projection: true }],
    { width: 400, height: 0, maxRows: 0 });
  const [band] = g.blockBands;
  assert.ok(band.left < g.layerLeft[1] && band.right > g.layerRight[2]);
  assert.ok(band.left > g.layerRight[0]);
  const [skip] = g.skips;
  assert.ok(close(skip.x0, (g.layerLeft[0] + g.layerRight[0]) / 2));
  assert.ok(close(skip.x1, (g.layerLeft[2] + g.layerRight[2]) / 2));
  assert.equal(skip.projection, true);
  assert.ok(Math.min(...Array.from(g.y)) >= 30); // room above the columns for the arcs
});

/** Points along a skip arc (the quadratic curve the painter strokes). */
const along = (k: Skip) => Array.from({ length: 41 }, (_, j) => {
  const t = j / 40;
  return [(1 - t) ** 2 * k.x0 + 2 * t * (1 - t) * k.cx + t * t * k.x1,
    (1 - t) ** 2 * k.y0 + 2 * t * (1 - t) * k.cy + t * t * k.y1];
});

test('a skip from the input (a block at the first layer) stays inside the drawing and above every column', () => {
  // A TransformerEncoder: every encoder layer a block of one gate layer, the first one fed by the input.
  const layers = [layer('encoder.layers.0.activation', 8, 0, 0), layer('encoder.layers.1.activation', 8, 8, 1)];
  const blocks: BlockInfo[] = [{ name: 'encoder.layers.0', first: 0, last: 0, projection: false },
    { name: 'encoder.layers.1', first: 1, last: 1, projection: false }];
  for (const width of [120, 400, 900]) {
    const g = layoutNetwork(layers, blocks, { width, height: 0, maxRows: 0 });
    assert.ok(g.skips[0].x0 < g.blockBands[0].left); // its foot stands beside the first block's band
    for (const k of g.skips) {
      for (const [x, y] of along(k)) {
        assert.ok(x >= 0 && x <= g.width && y >= 0 && y <= g.height, `(${x}, ${y}) outside the drawing`);
        layers.forEach((_, li) => {
          if (x >= g.layerLeft[li] && x <= g.layerRight[li]) {
            assert.ok(y < g.layerTop[li], `the arc crosses layer ${li} at (${x}, ${y})`);
          }
        });
      }
    }
  }
});

test('a drag rectangle selects the units whose cells it touches, whichever corner it starts from', () => {
  const g = layoutNetwork([layer('a', 4, 0), layer('b', 2, 4)], [], { width: 200, height: 0, maxRows: 0 });
  const column = [0, 1, 2, 3];
  assert.deepEqual(unitsInRect(g, 0, 0, 20, 200), column);
  assert.deepEqual(unitsInRect(g, 20, 200, 0, 0), column);
  assert.deepEqual(unitsInRect(g, 0, 40, 200, 60), [1, 4]);
  assert.deepEqual(unitsInRect(g, 150, 0, 190, 200), []);
});
