/**
 * The bundled demo notebooks (generated at build time from notebooks/*.ipynb into generated/notebooks.ts):
 * copied into the working directory with the contents API, then opened.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { PathExt } from '@jupyterlab/coreutils';
import type { Widget } from '@lumino/widgets';
import { namesIn } from './apps';
import { DEMO_NOTEBOOKS, type DemoNotebook } from './generated/notebooks';

export { DEMO_NOTEBOOKS, type DemoNotebook };

export function findDemo(name: string): DemoNotebook | undefined {
  return DEMO_NOTEBOOKS.find(d => d.name === name);
}

/** The path the demo gets in `dir`: its own file name, or name-1, name-2... when another file has it (one listing
 * of the folder, then only the names that exist are read). */
async function targetPath(app: JupyterFrontEnd, dir: string, demo: DemoNotebook): Promise<[string, boolean]> {
  const contents = app.serviceManager.contents;
  const taken = await namesIn(app, dir);
  for (let k = 0; k < 100; k++) {
    const file = k === 0 ? demo.file : demo.file.replace(/\.ipynb$/, `-${k}.ipynb`);
    const path = PathExt.join(dir, file);
    if (!taken.has(file)) {
      return [path, false];
    }
    const existing = await contents.get(path, { content: true });
    // An earlier copy of the same demo (edited or not) is reopened rather than duplicated.
    const meta = (existing.content as { metadata?: Record<string, unknown> } | null)?.metadata ?? {};
    if (existing.type === 'notebook' && meta['nonlin_explorer_demo'] === demo.name) {
      return [path, true];
    }
  }
  throw new Error(`no free file name for ${demo.file} in ${dir || 'the root folder'}`);
}

/** Copy a demo notebook into `dir` (unless an earlier copy is there) and open it. */
export async function openDemo(app: JupyterFrontEnd, name: string, dir: string): Promise<Widget | undefined> {
  const demo = findDemo(name);
  if (!demo) {
    throw new Error(`no demo notebook named ${name}; demos: ${DEMO_NOTEBOOKS.map(d => d.name).join(', ')}`);
  }
  const [path, exists] = await targetPath(app, dir, demo);
  if (!exists) {
    const content = JSON.parse(JSON.stringify(demo.content));
    content.metadata = { ...(content.metadata ?? {}), nonlin_explorer_demo: demo.name };
    await app.serviceManager.contents.save(path, { type: 'notebook', format: 'json', content });
  }
  return (await app.commands.execute('docmanager:open', { path, factory: 'Notebook' })) as Widget | undefined;
}
