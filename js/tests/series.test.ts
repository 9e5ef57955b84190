import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EVAL_CAP, STEP_CAP, SeriesStore } from '../src/dashboard/series';
import type { EvalColumns } from '../src/dashboard/types';

/** Eval columns as a `series` message carries them (step and metric columns, nonlinear counts per layer). */
const ev = (columns: Record<string, unknown>) => columns as EvalColumns;

function started(): SeriesStore {
  const s = new SeriesStore();
  s.reset(1, { step: [0, 1], loss: [2, 1.5] }, ev({ step: [0], test_acc: [0.1], nonlinear: [[3, 4]] }),
    [{ run: 0, label: 'run 0', steps: { step: [0], loss: [2.2] }, evals: { step: [] } }]);
  return s;
}

test('a snapshot replaces the run and keeps earlier runs as labelled overlays', () => {
  const s = started();
  assert.equal(s.run, 1);
  assert.equal(s.version, 1);
  assert.deepEqual(s.current.steps, { step: [0, 1], loss: [2, 1.5] });
  assert.deepEqual(s.current.evals, { step: [0], test_acc: [0.1] });
  assert.deepEqual(s.current.nonlinear, [[3, 4]]);
  assert.deepEqual(s.overlays.map(o => [o.label, o.steps.loss]), [['run 0', [2.2]]]);
});

test('series of the current run append; those of another run are refused', () => {
  const s = started();
  assert.equal(s.append(2, { step: [2], loss: [1.2] }, { step: [] }), false);
  assert.equal(s.version, 1);
  assert.deepEqual(s.current.steps.loss, [2, 1.5]);
  assert.equal(s.append(1, { step: [2], loss: [1.2] }, ev({ step: [1], test_acc: [0.3], nonlinear: [[2, 2]] })), true);
  assert.equal(s.version, 2);
  assert.deepEqual(s.current.steps, { step: [0, 1, 2], loss: [2, 1.5, 1.2] });
  assert.deepEqual(s.current.evals.test_acc, [0.1, 0.3]);
  assert.deepEqual(s.current.nonlinear, [[3, 4], [2, 2]]);
});

test('a column that appears late is padded with gaps, one that is missing gets gaps', () => {
  const s = started();
  s.append(1, { step: [2], loss: [1.2], lr: [0.1] }, { step: [] });
  assert.deepEqual(s.current.steps.lr, [null, null, 0.1]);
  s.append(1, { step: [3], lr: [0.05] }, { step: [] });
  assert.deepEqual(s.current.steps.loss, [2, 1.5, 1.2, null]);
  assert.deepEqual(s.current.steps.step, [0, 1, 2, 3]);
});

test('past the caps every other point is dropped, so the store stays bounded', () => {
  const s = new SeriesStore();
  s.reset(0, { step: [], loss: [] }, { step: [] }, []);
  const n = STEP_CAP + 1;
  const steps = Array.from({ length: n }, (_, i) => i);
  s.append(0, { step: steps, loss: steps.map(i => i / n) }, { step: [] });
  assert.equal(s.current.steps.step.length, Math.ceil(n / 2));
  assert.deepEqual(s.current.steps.step.slice(0, 3), [0, 2, 4]);
  const m = EVAL_CAP + 1;
  const evals = Array.from({ length: m }, (_, i) => i);
  s.append(0, { step: [] }, ev({ step: evals, nonlinear: evals.map(i => [i]) }));
  assert.equal(s.current.evals.step.length, Math.ceil(m / 2));
  assert.equal(s.current.nonlinear.length, Math.ceil(m / 2));
  assert.deepEqual(s.current.nonlinear[1], [2]);
});

test('chart data carries the run, the overlays and the run\'s shape', () => {
  const s = started();
  const d = s.chartData(500, ['fc1'], [16], 1e-3);
  assert.equal(d.current, s.current);
  assert.equal(d.overlays, s.overlays);
  assert.deepEqual([d.totalSteps, d.layerNames, d.units, d.tol], [500, ['fc1'], [16], 1e-3]);
});
