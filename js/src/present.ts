/**
 * Present mode: one output of a notebook cell (a widget, typically) in its own full-size main-area tab,
 * rendered by the notebook's own rendermime (so widgets share their models with the notebook and stay live).
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import type { CodeCell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { OutputAreaModel, SimplifiedOutputArea } from '@jupyterlab/outputarea';
import type { LabIcon } from '@jupyterlab/ui-components';
import { Panel } from '@lumino/widgets';

const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';
/** Outputs of Panel and Bokeh apps: live only in the view the notebook drew (their comm serves that one). */
const BOKEH_MIMES = ['application/vnd.holoviews_exec.v0+json', 'application/vnd.bokehjs_exec.v0+json'];

/** The code cell and output index to present: the output under the context menu, else the active cell's
 * last widget output (or its last output). */
export function pickOutput(
  app: JupyterFrontEnd,
  tracker: INotebookTracker
): { panel: NotebookPanel; cell: CodeCell; index: number } | null {
  const panel = tracker.currentWidget;
  if (!panel) {
    return null;
  }
  const hit = app.contextMenuHitTest(node => node.classList.contains('jp-OutputArea-child'));
  if (hit) {
    const cellNode = hit.closest('.jp-CodeCell');
    const cell = panel.content.widgets.find(c => c.node === cellNode) as CodeCell | undefined;
    if (cell && cell.model.type === 'code') {
      const children = Array.from(hit.parentElement?.children ?? []).filter(n =>
        n.classList.contains('jp-OutputArea-child')
      );
      return { panel, cell, index: Math.max(0, children.indexOf(hit)) };
    }
  }
  const cell = panel.content.activeCell;
  if (!cell || cell.model.type !== 'code') {
    return null;
  }
  const code = cell as CodeCell;
  const outputs = code.model.outputs;
  if (!outputs.length) {
    return null;
  }
  let index = outputs.length - 1;
  for (let k = outputs.length - 1; k >= 0; k--) {
    if (WIDGET_MIME in (outputs.get(k).data ?? {})) {
      index = k;
      break;
    }
  }
  return { panel, cell: code, index };
}

/** Open the chosen output in its own main-area tab. */
export function present(
  app: JupyterFrontEnd,
  target: { panel: NotebookPanel; cell: CodeCell; index: number },
  icon: LabIcon
): MainAreaWidget<Panel> {
  const { panel, cell, index } = target;
  const content = new Panel();
  content.addClass('ne-present-panel');
  const data = cell.model.outputs.get(index).data ?? {};
  const bokehChild = BOKEH_MIMES.some(m => m in data) ? cell.outputArea.widgets[index] : undefined;
  let restore: (() => void) | null = null;
  if (bokehChild) {
    // A Panel/Bokeh app: a second render of its output would be a frozen copy of the document as first sent
    // (no comm behind it). Move the live view itself into the tab instead, and put it back when the tab closes.
    const node = bokehChild.node;
    const placeholder = document.createElement('div');
    placeholder.className = 'ne-present-placeholder';
    placeholder.textContent = 'Presented in its own tab: close that tab to bring the app back here.';
    node.parentNode?.insertBefore(placeholder, node);
    content.node.appendChild(node);
    restore = () => {
      if (placeholder.isConnected) {
        placeholder.replaceWith(node);
      }
      window.dispatchEvent(new Event('resize'));
    };
  } else {
    const area = new SimplifiedOutputArea({
      model: new OutputAreaModel({ trusted: true }),
      rendermime: panel.content.rendermime
    });
    area.model.add(cell.model.outputs.get(index).toJSON());
    content.addWidget(area);
  }
  const main = new MainAreaWidget({ content });
  const n = panel.content.widgets.indexOf(cell) + 1;
  main.id = `nonlin-explorer-present-${Date.now()}`;
  main.title.label = `Present: ${panel.title.label} [cell ${n}]`;
  main.title.caption = `Output ${index + 1} of cell ${n} in ${panel.context.path}`;
  main.title.icon = icon;
  main.title.closable = true;
  main.addClass('ne-present');
  const closeWith = () => main.dispose();
  panel.disposed.connect(closeWith);
  main.disposed.connect(() => panel.disposed.disconnect(closeWith));
  if (restore) {
    const back = restore;
    main.disposed.connect(back);
    // Re-running the cell replaces the output: the moved view is gone, so the tab closes.
    const outputsChanged = () => main.dispose();
    cell.model.outputs.changed.connect(outputsChanged);
    main.disposed.connect(() => cell.model.outputs.changed.disconnect(outputsChanged));
  }
  app.shell.add(main, 'main', { mode: 'tab-after', ref: panel.id });
  app.shell.activateById(main.id);
  window.setTimeout(() => window.dispatchEvent(new Event('resize')), 50); // Bokeh re-measures its new box
  return main;
}
