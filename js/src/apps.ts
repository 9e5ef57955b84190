/**
 * The apps in the launcher: a new notebook in the current folder, pre-filled with the cell that shows the app,
 * opened and run (so the app renders at once; the notebook stays for the user to edit). The training dashboard is
 * and the compression explorer are anywidgets (nothing to load first).
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { PathExt } from '@jupyterlab/coreutils';
import { NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

export interface PanelApp {
  /** The command argument and the notebook's file stem. */
  name: string;
  title: string;
  caption: string;
  /** The class `nonlin_explorer.ui` exports. */
  className: string;
  /** The expression that shows it (default: `className()`). */
  call?: string;
  /** A Panel app (needs `pn.extension` first) or a widget. */
  panel: boolean;
}

export const PANEL_APPS: readonly PanelApp[] = [
  {
    name: 'compression-explorer',
    title: 'Compression explorer',
    caption: 'A new notebook in the current folder that shows the compression explorer',
    className: 'CompressionExplorer',
    panel: false
  },
  {
    name: 'training-dashboard',
    title: 'Training dashboard',
    caption: 'A new notebook in the current folder that shows the training dashboard',
    className: 'TrainingDashboard',
    call: 'TrainingDashboard.demo()',
    panel: false
  }
];

export function findApp(name: string): PanelApp | undefined {
  return PANEL_APPS.find(a => a.name === name);
}

/** The notebook cell that shows the app; for Panel, inline=True: Bokeh/Panel JS from the notebook, not from their
 * CDNs (offline). */
export function appCell(app: PanelApp): string {
  const show = `from nonlin_explorer.ui import ${app.className}\n${app.call ?? `${app.className}()`}`;
  return app.panel ? `import panel as pn\npn.extension(inline=True)\n${show}` : show;
}

function appNotebook(app: PanelApp): Record<string, unknown> {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python' },
      nonlin_explorer_app: app.name
    },
    cells: [{ cell_type: 'code', id: 'app', metadata: {}, execution_count: null, outputs: [], source: appCell(app) }]
  };
}

/** A file name in `dir` nobody uses yet: name.ipynb, name-1.ipynb, ... (one listing of the folder: probing each
 * name would log a 404 in the console for every free one). */
async function freePath(jlab: JupyterFrontEnd, dir: string, stem: string): Promise<string> {
  const taken = await namesIn(jlab, dir);
  for (let k = 0; k < 1000; k++) {
    const file = k === 0 ? `${stem}.ipynb` : `${stem}-${k}.ipynb`;
    if (!taken.has(file)) {
      return PathExt.join(dir, file);
    }
  }
  throw new Error(`no free file name for ${stem}.ipynb in ${dir || 'the root folder'}`);
}

/** The names of the files and folders in `dir`. */
export async function namesIn(jlab: JupyterFrontEnd, dir: string): Promise<Set<string>> {
  const listing = await jlab.serviceManager.contents.get(dir, { content: true });
  const items = (listing.content ?? []) as { name: string }[];
  return new Set(items.map(item => item.name));
}

/** Create the app's notebook in `dir`, open it and run its cell once the kernel is up. */
export async function openApp(jlab: JupyterFrontEnd, name: string, dir: string): Promise<NotebookPanel> {
  const app = findApp(name);
  if (!app) {
    throw new Error(`no app named ${name}; apps: ${PANEL_APPS.map(a => a.name).join(', ')}`);
  }
  const path = await freePath(jlab, dir, app.name);
  await jlab.serviceManager.contents.save(path, { type: 'notebook', format: 'json', content: appNotebook(app) });
  const widget = await jlab.commands.execute('docmanager:open', { path, factory: 'Notebook' });
  if (!(widget instanceof NotebookPanel)) {
    throw new Error(`${path} did not open as a notebook`);
  }
  await widget.context.ready;
  await widget.sessionContext.ready;
  await NotebookActions.runAll(widget.content, widget.sessionContext);
  return widget;
}
