import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dropTokenFromUrl, subscribe } from '../src/page_wiring';
import { FakeWidgetModel } from './fake_widget_model';

test('a table of handlers is called on its events, and one cleanup unsubscribes every one of them', () => {
  const model = new FakeWidgetModel({ run: 0, theme: 'auto' });
  const calls: string[] = [];
  const cleanup = subscribe<{ id: string }>(model, {
    'change:run': () => calls.push('run'),
    'change:theme': () => calls.push('theme'),
    'msg:custom': msg => calls.push(`msg ${msg.id}`)
  });
  model.set('run', 1);
  model.set('theme', 'dark');
  model.set('other', 2); // no handler: nothing called
  model.receive({ id: 'a' });
  assert.deepEqual(calls, ['run', 'theme', 'msg a']);
  cleanup();
  model.set('run', 2);
  model.set('theme', 'light');
  model.receive({ id: 'b' });
  assert.deepEqual(calls, ['run', 'theme', 'msg a']);
});

test('two subscriptions to one model are undone apart (a second view of the same widget stays wired)', () => {
  const model = new FakeWidgetModel();
  const seen: string[] = [];
  const first = subscribe(model, { 'change:run': () => seen.push('first') });
  subscribe(model, { 'change:run': () => seen.push('second') });
  first();
  model.set('run', 1);
  assert.deepEqual(seen, ['second']);
});

/** A window with only what dropTokenFromUrl reads and writes: its address and its history. */
function fakeWindow(href: string): { win: Window; replaced: string[] } {
  const replaced: string[] = [];
  const win = {
    location: { href },
    history: { state: { kept: true }, replaceState: (_state: unknown, _title: string, url: string) => replaced.push(url) }
  } as unknown as Window;
  return { win, replaced };
}

test("the served app's root loses its token and keeps every other part of its address", () => {
  const { win, replaced } = fakeWindow('http://127.0.0.1:5006/?token=s3cret&lambda=0.1#charts');
  assert.equal(dropTokenFromUrl(win), true);
  assert.deepEqual(replaced, ['/?lambda=0.1#charts']);
  const only = fakeWindow('http://127.0.0.1:5006/?token=s3cret');
  assert.equal(dropTokenFromUrl(only.win), true);
  assert.deepEqual(only.replaced, ['/']);
});

test('an address without a token, or not at the root (JupyterLab), is left alone', () => {
  for (const href of ['http://127.0.0.1:5006/?lambda=0.1', 'http://127.0.0.1:8888/lab/tree/a.ipynb?token=abc']) {
    const { win, replaced } = fakeWindow(href);
    assert.equal(dropTokenFromUrl(win), false);
    assert.deepEqual(replaced, []);
  }
});
