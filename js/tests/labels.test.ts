import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labelRoom, shortenLeft } from '../src/network/labels';

const within = (n: number) => (text: string) => text.length <= n; // one "pixel" per character

test('a name that fits is kept whole', () => {
  assert.equal(shortenLeft('features.2', within(10)), 'features.2');
});

test('a long name keeps whole dotted parts from the right while two or more fit', () => {
  assert.equal(shortenLeft('layer1.0.conv1', within(8)), '\u20260.conv1');
  assert.equal(shortenLeft('encoder.layers.0.activation', within(20)), '\u2026layers.0.activation');
});

test('otherwise as many trailing characters as fit, never just the last one when more fit', () => {
  assert.equal(shortenLeft('features.2', within(5)), '\u2026es.2');
  assert.equal(shortenLeft('features.12', within(4)), '\u2026.12');
  assert.equal(shortenLeft('features.2', within(0)), '\u20262'); // nothing fits: the last character
});

test('each label may use half the distance to its neighbours, and the edges at the ends', () => {
  assert.deepEqual(labelRoom([20, 60, 140], 200, 0), [40, 40, 80]);
  assert.deepEqual(labelRoom([20, 60, 140], 200, 6), [34, 34, 74]);
  assert.deepEqual(labelRoom([100], 150), [96]);
});
