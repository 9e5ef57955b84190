import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rotation3d } from '../src/compression/charts';
import { Box, crossedBy, overlaps, placeLabels } from '../src/compression/labels';

const BOUNDS: Box = { x: 0, y: 0, w: 300, h: 300 };
const SIZE = { w: 10, h: 16 };

function pairwise(boxes: Box[]): [number, number][] {
  const out: [number, number][] = [];
  boxes.forEach((a, i) => boxes.forEach((b, j) => i < j && overlaps(a, b) && out.push([i, j])));
  return out;
}

test('labels of eight units on a circle neither overlap nor cover a point, and stay inside', () => {
  const pts = Array.from({ length: 8 }, (_, k) => ({ x: 150 + 120 * Math.cos(k * Math.PI / 4),
    y: 150 + 120 * Math.sin(k * Math.PI / 4) }));
  const boxes = placeLabels(pts, pts.map(() => SIZE), { x: 150, y: 150 }, 7, BOUNDS);
  assert.deepEqual(pairwise(boxes), []);
  for (const b of boxes) {
    assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.w <= 300 && b.y + b.h <= 300);
    for (const p of pts) {
      assert.ok(!overlaps(b, { x: p.x - 7, y: p.y - 7, w: 14, h: 14 }));
    }
  }
  // Outward first: the label of the rightmost point lies to its right.
  assert.ok(boxes[0].x > pts[0].x);
});

test('labels of units that nearly coincide are pushed apart', () => {
  const pts = Array.from({ length: 8 }, (_, k) => ({ x: 200 + 0.5 * k, y: 120 - 0.5 * k }));
  const boxes = placeLabels(pts, pts.map(() => SIZE), { x: 150, y: 150 }, 7, BOUNDS);
  assert.deepEqual(pairwise(boxes), []);
});

test('labels keep clear of boxes to avoid (the 3-D view\'s axis labels)', () => {
  const pts = [{ x: 250, y: 150 }];
  const axis: Box = { x: 262, y: 140, w: 30, h: 20 };
  const [box] = placeLabels(pts, [SIZE], { x: 150, y: 150 }, 7, BOUNDS, [axis]);
  assert.ok(!overlaps(box, axis));
});

test('given a ring, no label crosses it: units inside the unit circle, next to its line', () => {
  // Points just inside a circle of radius 120: outward placement alone would put labels across its line.
  const centre = { x: 150, y: 150 };
  const pts = Array.from({ length: 6 }, (_, k) => ({ x: 150 + 110 * Math.cos(k * Math.PI / 3 + 0.2),
    y: 150 + 110 * Math.sin(k * Math.PI / 3 + 0.2) }));
  const free = placeLabels(pts, pts.map(() => SIZE), centre, 7, BOUNDS);
  assert.ok(free.some(b => crossedBy(b, centre, 120)), 'without the ring some label lies across the line');
  const boxes = placeLabels(pts, pts.map(() => SIZE), centre, 7, BOUNDS, [], 120);
  assert.deepEqual(boxes.filter(b => crossedBy(b, centre, 120)), []);
  assert.deepEqual(pairwise(boxes), []);
});

test('a box is crossed by a circle only when the circle passes through it', () => {
  const c = { x: 0, y: 0 };
  assert.ok(crossedBy({ x: 95, y: -5, w: 10, h: 10 }, c, 100));  // straddles the line
  assert.ok(!crossedBy({ x: 110, y: -5, w: 10, h: 10 }, c, 100));  // outside
  assert.ok(!crossedBy({ x: -5, y: -5, w: 10, h: 10 }, c, 100));  // around the centre, inside
});

test('the 3-D camera is a rotation; at (0, 0) the screen shows PC1 and PC2', () => {
  assert.deepEqual(rotation3d(0, 0).map(r => r.map(v => Math.round(v * 1e12) / 1e12 + 0)),
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
  const R = rotation3d(30, 20);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const dot = R[i][0] * R[j][0] + R[i][1] * R[j][1] + R[i][2] * R[j][2];
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12);
    }
  }
  // Azimuth 90: PC3 turns onto the screen's x axis (R = R_x(e) R_y(a), as compression_core.rotation_3d).
  assert.ok(Math.abs(rotation3d(90, 0)[0][2] - 1) < 1e-12);
});
