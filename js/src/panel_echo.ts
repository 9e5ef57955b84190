/**
 * Stop Panel apps in notebooks from echoing the kernel's own changes back to the kernel.
 *
 * In a notebook, Panel's `CommManager` (a Bokeh model in the output) listens to every change of its Bokeh
 * document and sends it to Python. Patches that arrive *from* the kernel are applied with `sync: false`
 * (Bokeh marks them so), but the listener does not look at that flag (Bokeh's own server session does), so
 * every streamed point, every status text and every binary array the kernel sends comes straight back.
 * Python then re-applies each echo, looking each model up by walking the whole document: with a live
 * dashboard streaming at 10 Hz this kept the kernel's main thread busy for seconds per message, so other
 * cells waited for minutes. Dropping events marked `sync: false` leaves changes made in the page (slider
 * moves, clicks, plot range updates) untouched.
 *
 * For the same reason, the start/end that a `DataRange1d` computes in the page from the data it shows (auto
 * ranging, re-done after every streamed batch) are not sent either: the kernel never reads them back, and each
 * cost it the same document walk. Ranges a user moved (pan, zoom: BokehJS marks such a range
 * `have_updated_interactively`) are still sent.
 *
 * Panel's JavaScript is loaded by the notebook output (`pn.extension()`), after this extension starts, and
 * may be loaded again by a later `pn.extension()`, so the patch is (re)applied by a light periodic check.
 */

/** The Bokeh model name of Panel's notebook comm manager. */
export const COMM_MANAGER = 'panel.models.comm_manager.CommManager';

const PATCHED = Symbol.for('nonlin-explorer:panel-echo-filter');

interface DocumentEvent {
  sync?: boolean;
  attr?: string;
  model?: { have_updated_interactively?: unknown; update?: unknown };
}

/** A range's start/end computed by BokehJS's auto ranging (DataRange1d.update), not by the user. */
export function isAutoRangeChange(event: DocumentEvent): boolean {
  const model = event.model;
  return (
    (event.attr === 'start' || event.attr === 'end') &&
    model !== undefined &&
    model !== null &&
    typeof model.update === 'function' &&
    model.have_updated_interactively === false
  );
}

interface CommManagerClass {
  prototype: {
    _document_changed?: (event: DocumentEvent) => void;
    [PATCHED]?: boolean;
  };
}

interface BokehGlobal {
  Models?: { get?: (name: string) => CommManagerClass | undefined };
}

/** Patch the comm manager class loaded in `win` (if any); true when a patched class is in place. */
export function filterPanelEchoes(win: { Bokeh?: BokehGlobal } = window as unknown as { Bokeh?: BokehGlobal }): boolean {
  let cls: CommManagerClass | undefined;
  try {
    cls = win.Bokeh?.Models?.get?.(COMM_MANAGER) ?? undefined; // null until Panel's JS is loaded
  } catch {
    return false; // some other global named Bokeh: leave it alone
  }
  const proto = cls?.prototype;
  if (!proto || typeof proto._document_changed !== 'function') {
    return false;
  }
  if (proto[PATCHED]) {
    return true;
  }
  const original = proto._document_changed;
  proto._document_changed = function (this: unknown, event: DocumentEvent): void {
    if (event && (event.sync === false || isAutoRangeChange(event))) {
      return; // applied from the kernel (it already has it), or an auto range it does not need
    }
    original.call(this, event);
  };
  proto[PATCHED] = true;
  return true;
}

/** Keep the filter applied for the page's lifetime (a check costs microseconds; once a second). */
export function keepFilteringPanelEchoes(periodMs = 1000): () => void {
  filterPanelEchoes();
  const timer = window.setInterval(() => filterPanelEchoes(), periodMs);
  return () => window.clearInterval(timer);
}
