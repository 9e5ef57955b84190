import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatNumber, linearScale, logScale, niceCeil, niceDomain, niceStep, stepAxisEnd, stepsEnd
} from '../src/charts/scale';
import { ChartData, emptyRun } from '../src/charts/data';
import { MARK_CONTRAST, contrastRatio } from '../src/colormap';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9 * Math.max(1, Math.abs(b));

test('nice steps are 1, 2 or 5 times a power of ten', () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(7, 5), 1);
  assert.ok(close(niceStep(0.3, 3), 0.1));
  assert.equal(niceStep(400, 4), 100);
});

test('a nice domain widens to round outer ticks', () => {
  assert.deepEqual(niceDomain(0.3, 9.2, 5), { lo: 0, hi: 10, ticks: [0, 2, 4, 6, 8, 10] });
  const flat = niceDomain(5, 5, 4); // a single value still gets a span around it
  assert.ok(flat.lo < 5 && flat.hi > 5 && flat.ticks.length > 1);
  const bad = niceDomain(NaN, Infinity, 4); // no data: the unit interval
  assert.ok(bad.lo <= 0 && bad.hi >= 1);
});

test('axis ends grow in round jumps and stop at the last step of the run', () => {
  assert.deepEqual([3, 7.5, 120, 1, 0, -2].map(niceCeil), [5, 10, 200, 1, 1, 1]);
  assert.equal(stepAxisEnd(100, 5000), 200);
  assert.equal(stepAxisEnd(4900, 5000), 5000);
  assert.equal(stepAxisEnd(0, 0), 10);
});

test('every step chart ends its x axis at the last step any run shown has reached', () => {
  const current = emptyRun('now');
  current.steps = { step: [1, 2, 190, null], loss: [1, 1, 1, null] };
  current.evals = { step: [50, 150] };
  const earlier = emptyRun('before');
  earlier.evals = { step: [100, 120] };
  const data: ChartData = { current, overlays: [earlier], totalSteps: 5000, layerNames: [], units: [], tol: 1e-3 };
  // per-step data (190) run ahead of the evaluations (150): the axis follows 190, not 150
  assert.equal(stepsEnd(data), stepAxisEnd(190, 5000));
  assert.equal(stepsEnd(data), 500);
  earlier.steps = { step: [900] };
  assert.equal(stepsEnd(data), 2000);
  assert.equal(stepsEnd(null), 10);
});

test('contrast ratios are WCAG\'s', () => {
  assert.ok(close(contrastRatio('#000000', '#ffffff'), 21));
  assert.ok(Math.abs(contrastRatio('#777777', 'rgb(255,255,255)') - 4.48) < 0.01);
  assert.ok(contrastRatio('#440154', '#15181d') < MARK_CONTRAST); // viridis purple on the dark theme: needs an edge
});

test('numbers are formatted for their tick step', () => {
  assert.equal(formatNumber(NaN), '');
  assert.equal(formatNumber(123456), '1e5');
  assert.equal(formatNumber(0.0002), '2e-4');
  assert.equal(formatNumber(2500, 1000), '2.5k');
  assert.equal(formatNumber(0.25, 0.05), '0.25');
  assert.equal(formatNumber(3), '3.00');
});

test('a linear scale maps its domain onto the pixels', () => {
  const s = linearScale(0, 10, 0, 100, 5);
  assert.equal(s.map(5), 50);
  assert.equal(s.map(0), 0);
  assert.equal(s.map(10), 100);
  assert.deepEqual(s.ticks, [0, 2, 4, 6, 8, 10]);
  assert.equal(s.format(4), '4');
  assert.equal(s.log, false);
  const fixed = linearScale(0, 1, 200, 0, 4, true); // fixed: the domain as given, pixels may run backwards
  assert.equal(fixed.map(0), 200);
  assert.equal(fixed.map(1), 0);
  assert.ok(fixed.ticks.every(t => t >= 0 && t <= 1));
});

test('a log scale spans whole decades and leaves non-positive values unplaced', () => {
  const s = logScale(0.01, 50, 0, 300);
  assert.equal(s.ticks.length, 5);
  assert.ok(s.ticks.every((t, i) => close(t, Math.pow(10, i - 2))));
  assert.ok(close(s.map(1), 150));
  assert.ok(Number.isNaN(s.map(0)));
  assert.equal(s.format(0.01), '0.01');
  assert.equal(s.format(1e4), '1e4');
  assert.equal(s.log, true);
});
