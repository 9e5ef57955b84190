import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Channel } from '../src/transport';
import { FakeWidgetModel } from './fake_widget_model';

test('a request goes out with a fresh id through model.send, and its answer is routed back by that id', () => {
  const model = new FakeWidgetModel();
  const channel = new Channel(model);
  const first = channel.send({ type: 'set', sparsity: 0.1 });
  const second = channel.send({ type: 'toggle', layer: 0 });
  assert.notEqual(first, second);
  assert.deepEqual(model.sent, [{ type: 'set', sparsity: 0.1, id: first }, { type: 'toggle', layer: 0, id: second }]);
  assert.equal(model.saves, 0);
  assert.ok(channel.owns(first) && channel.owns(second));
  assert.ok(!channel.owns('v0-other-1') && !channel.owns(7));
  const ms = channel.settle(first);
  assert.ok(Number.isFinite(ms) && ms >= 0);
  assert.deepEqual(channel.answered, [ms]);
  assert.ok(!channel.owns(first)); // answered once
  assert.ok(Number.isNaN(channel.settle(first)));
  assert.equal(channel.answered.length, 1);
});

test('without model.send (a Panel page) a request is the synced request property, numbered by seq', () => {
  const model = new FakeWidgetModel({}, false);
  const channel = new Channel(model);
  const id = channel.send({ type: 'reset' });
  assert.deepEqual(model.get('request'), { type: 'reset', id, seq: 1 });
  channel.send({ type: 'reset' }); // the same request again is still a change
  assert.equal((model.get('request') as { seq: number }).seq, 2);
  assert.equal(model.saves, 2);
  assert.deepEqual(model.sent, []);
});

test('two views of one model never share a request id', () => {
  const model = new FakeWidgetModel();
  const a = new Channel(model);
  const b = new Channel(model);
  const idA = a.send({ type: 'x' });
  const idB = b.send({ type: 'x' });
  assert.notEqual(idA, idB);
  assert.ok(a.owns(idA) && !a.owns(idB) && b.owns(idB) && !b.owns(idA));
});
