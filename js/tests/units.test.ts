import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode } from '../src/codecs';
import { PENDING_TIMEOUT_MS, UnitData } from '../src/network/units';
import { UnitState } from '../src/network_view_types';
import { FakeWidgetModel, binary } from './fake_widget_model';

function loaded(): { model: FakeWidgetModel; units: UnitData } {
  const model = new FakeWidgetModel({
    layers: [{ name: 'fc1', units: 3, offset: 0, block: -1 }, { name: 'fc2', units: 2, offset: 3, block: -1 }],
    slopes: binary([0, 1, 0.5, 0.9995, 0.2], 'float32'),
    states: binary([0, 0, 0, 0, UnitState.LINEAR], 'uint8'),
    tol: 1e-3
  });
  const units = new UnitData(model);
  units.readLayout();
  units.readSlopes();
  units.readStates();
  return { model, units };
}

test('the layout gives every unit its layer and its index within the layer', () => {
  const { units } = loaded();
  assert.equal(units.count, 5);
  assert.deepEqual(Array.from(units.layerOf), [0, 0, 0, 1, 1]);
  assert.deepEqual(Array.from(units.unitOf), [0, 1, 2, 0, 1]);
  assert.deepEqual(units.unitsOf(1), [3, 4]);
});

test('a unit is linear within tol of slope 1, and a forced state names itself', () => {
  const { units } = loaded();
  assert.deepEqual([0, 1, 2, 3, 4].map(i => units.wordOf(i)), [0, 1, 0, 1, 2]);
  assert.equal(units.labelOf(4), 'fc2 unit 1: forced linear');
  assert.equal(units.labelOf(2), 'fc1 unit 2: nonlinear');
  assert.deepEqual(units.layerCounts(0), { nonlinear: 2, forcedLinear: 0, forcedNonlinear: 0 });
  assert.deepEqual(units.layerCounts(1), { nonlinear: 0, forcedLinear: 1, forcedNonlinear: 0 });
});

test('a click shows at once, and a refusal rolls back only that request', () => {
  const { units } = loaded();
  units.expect([0, 1], UnitState.NONLINEAR, 'r1', 0);
  units.expect([2], UnitState.LINEAR, 'r2', 0);
  units.expect([4], UnitState.LINEAR, 'r3', 0); // the kernel has it already: nothing pending
  assert.equal(units.pending.size, 3);
  assert.equal(units.stateOf(1), UnitState.NONLINEAR);
  assert.equal(units.shownSlope(1), 0);
  assert.equal(units.shownSlope(2), 1);
  assert.equal(units.wordOf(0), 3);
  assert.equal(units.rollBack('r1'), 2);
  assert.equal(units.stateOf(1), UnitState.FREE);
  assert.equal(units.shownSlope(1), 1);
  assert.equal(units.pending.size, 1);
});

test('the kernel confirming a change ends its pending state; an unanswered one expires', () => {
  const { model, units } = loaded();
  units.expect([0], UnitState.LINEAR, 'r1', 0);
  units.expect([1], UnitState.NONLINEAR, 'r2', 0);
  model.set('states', binary([UnitState.LINEAR, 0, 0, 0, UnitState.LINEAR], 'uint8'));
  const seq = units.statesSeq;
  units.readStates();
  assert.equal(units.statesSeq, seq + 1);
  assert.deepEqual([...units.pending.keys()], [1]);
  assert.equal(units.expire(PENDING_TIMEOUT_MS), 0);
  assert.equal(units.expire(PENDING_TIMEOUT_MS + 1), 1);
  assert.equal(units.stateOf(1), UnitState.FREE);
});

test('binary arrays decode to typed arrays, copied when the offset is unaligned; a wrong dtype is refused', () => {
  const bytes = new Uint8Array(9);
  new Float32Array(bytes.buffer, 0, 2).set([1.5, -2]);
  const shifted = new Uint8Array(9);
  shifted.set(bytes.subarray(0, 8), 1);
  const out = decode({ view: new DataView(shifted.buffer, 1, 8), dtype: 'float32', shape: [2] }, 'float32');
  assert.deepEqual(Array.from(out), [1.5, -2]);
  assert.equal(decode(null, 'uint8').length, 0);
  assert.throws(() => decode({ view: new DataView(bytes.buffer), dtype: 'uint8', shape: [9] }, 'float32'),
    /expected a float32 array, got uint8/);
});
