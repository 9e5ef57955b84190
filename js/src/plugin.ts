/**
 * The nonlin_explorer JupyterLab extension: a "Nonlinear Explorer" launcher section and palette commands
 * that copy the bundled demo notebooks into the working directory and open them, items that open the Panel
 * apps (compression explorer, training dashboard) in a new notebook, and a "present" command that opens a
 * widget output in its own full-size main-area tab.
 */

import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { PANEL_APPS, findApp, openApp } from './apps';
import { DEMO_NOTEBOOKS, findDemo, openDemo } from './demos';
import { pickOutput, present } from './present';

export const PLUGIN_ID = 'nonlin-explorer:plugin';
export const CATEGORY = 'Nonlinear Explorer';
export const CommandIDs = {
  openDemo: 'nonlin-explorer:open-demo',
  openApp: 'nonlin-explorer:open-app',
  present: 'nonlin-explorer:present'
} as const;

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24">
<g class="jp-icon3" fill="#616161"><rect x="2" y="3" width="4" height="4" rx="1"/><rect x="2" y="10" width="4" height="4" rx="1"/>
<rect x="2" y="17" width="4" height="4" rx="1"/><rect x="10" y="6" width="4" height="4" rx="1"/>
<rect x="10" y="14" width="4" height="4" rx="1"/><rect x="18" y="10" width="4" height="4" rx="1"/></g>
<path class="jp-icon-accent0" d="M14 21 L17 21 L22 15" stroke="#ff7043" stroke-width="1.8" fill="none"/></svg>`;

export const explorerIcon = new LabIcon({ name: 'nonlin-explorer:icon', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Nonlinear Explorer: demo notebooks in the launcher and a present mode for widget outputs.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILauncher, ICommandPalette, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    browser: IDefaultFileBrowser | null
  ) => {
    app.commands.addCommand(CommandIDs.openDemo, {
      label: args => {
        const demo = findDemo(String(args.name ?? ''));
        if (args.isLauncher) {
          return demo ? demo.title : 'Demo';
        }
        return demo ? `Open demo notebook: ${demo.title}` : 'Open a demo notebook';
      },
      caption: args => `Copy the ${String(args.name ?? '')} demo notebook into the current folder and open it`,
      icon: args => (args.isPalette ? undefined : explorerIcon),
      execute: async args => {
        const cwd = typeof args.cwd === 'string' ? args.cwd : (browser?.model.path ?? '');
        return openDemo(app, String(args.name ?? DEMO_NOTEBOOKS[0]?.name ?? ''), cwd);
      }
    });

    app.commands.addCommand(CommandIDs.openApp, {
      label: args => {
        const panelApp = findApp(String(args.name ?? ''));
        if (args.isLauncher) {
          return panelApp ? panelApp.title : 'App';
        }
        return panelApp ? `Open app in a new notebook: ${panelApp.title}` : 'Open an app in a new notebook';
      },
      caption: args => findApp(String(args.name ?? ''))?.caption ?? '',
      icon: args => (args.isPalette ? undefined : explorerIcon),
      execute: async args => {
        const cwd = typeof args.cwd === 'string' ? args.cwd : (browser?.model.path ?? '');
        return openApp(app, String(args.name ?? PANEL_APPS[0]?.name ?? ''), cwd);
      }
    });

    app.commands.addCommand(CommandIDs.present, {
      label: 'Present widget output in its own tab',
      caption: 'Open the chosen cell output (a widget) in a full-size main-area tab, for talks',
      icon: args => (args.isPalette ? undefined : explorerIcon),
      isEnabled: () => pickOutput(app, tracker) !== null,
      execute: () => {
        const target = pickOutput(app, tracker);
        if (!target) {
          throw new Error('select a notebook cell with an output to present');
        }
        return present(app, target, explorerIcon);
      }
    });

    DEMO_NOTEBOOKS.forEach((demo, rank) => {
      launcher?.add({ command: CommandIDs.openDemo, args: { name: demo.name, isLauncher: true }, category: CATEGORY, rank });
      palette?.addItem({ command: CommandIDs.openDemo, args: { name: demo.name, isPalette: true }, category: CATEGORY });
    });
    PANEL_APPS.forEach((panelApp, rank) => {
      const args = { name: panelApp.name };
      launcher?.add({ command: CommandIDs.openApp, args: { ...args, isLauncher: true }, category: CATEGORY,
                      rank: DEMO_NOTEBOOKS.length + rank });
      palette?.addItem({ command: CommandIDs.openApp, args: { ...args, isPalette: true }, category: CATEGORY });
    });
    palette?.addItem({ command: CommandIDs.present, args: { isPalette: true }, category: CATEGORY });
    app.contextMenu.addItem({ command: CommandIDs.present, selector: '.jp-OutputArea-child', rank: 0 });
  }
};

export default plugin;
