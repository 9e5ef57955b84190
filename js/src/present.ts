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
  const area = new SimplifiedOutputArea({
    model: new OutputAreaModel({ trusted: true }),
    rendermime: panel.content.rendermime
  });
  area.model.add(cell.model.outputs.get(index).toJSON());
  const content = new Panel();
  content.addClass('ne-present-panel');
  content.addWidget(area);
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
  app.shell.add(main, 'main', { mode: 'tab-after', ref: panel.id });
  app.shell.activateById(main.id);
  return main;
}
