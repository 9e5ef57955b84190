import assert from 'node:assert/strict';
import { test } from 'node:test';
import { symlog, symlogTicks, withAlpha } from '../src/charts/band_chart';
import { bandRuns } from '../src/charts/painter';

test('symlog is linear near zero, logarithmic beyond its threshold, and inverts', () => {
  const f = symlog(10);
  assert.equal(f.to(0), 0);
  assert.ok(Math.abs(f.to(10) - Math.log10(2)) < 1e-12);
  assert.ok(Math.abs(f.to(-10) + Math.log10(2)) < 1e-12);
  for (const v of [0, 1, 9.5, 42.7, 256, -3]) {
    assert.ok(Math.abs(f.from(f.to(v)) - v) < 1e-9 * Math.max(1, Math.abs(v)));
  }
});

test('symlog ticks are round, inside the range, and never closer than the gap', () => {
  const f = symlog(10);
  const px = (v: number) => 100 * f.to(v);
  const ticks = symlogTicks(0, 256, px, 20);
  assert.equal(ticks[0], 0);
  assert.ok(ticks.every(t => t <= 256 && [0, 1, 2, 5].includes(t / Math.pow(10, Math.floor(Math.log10(t || 1))))));
  for (let i = 1; i < ticks.length; i++) {
    assert.ok(px(ticks[i]) - px(ticks[i - 1]) >= 20);
  }
  assert.ok(ticks.includes(100));
});

test('a band breaks where a value is missing and needs two points to enclose an area', () => {
  const n = NaN;
  assert.deepEqual(bandRuns([0, 1, 2, 3, 4, 5], [0, 0, n, 0, 0, 0], [1, 1, 1, 1, 1, 1]), [[0, 1], [3, 4, 5]]);
  assert.deepEqual(bandRuns([0, 1, 2], [0, n, 0], [1, 1, 1]), []);
});

test('dots drawn over each other get an alpha', () => {
  assert.equal(withAlpha('#1f6fb4', 0.5), 'rgba(31, 111, 180, 0.5)');
});
