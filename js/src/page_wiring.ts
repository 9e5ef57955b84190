// What every app page wires the same way: its model's events, JupyterLab's theme switches and, in the served app,
// the token in the address bar. Each subscription comes back as one function that undoes it (for the page's dispose).

/** The part of anywidget's model (or Panel's) that a page subscribes through. */
export interface ModelEvents {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, fn: (...args: any[]) => void): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: string, fn: (...args: any[]) => void): void;
}

/** A page's handlers by event: `change:<field>` when a synced field changed, `msg:custom` for a message. */
export type PageHandlers<M> = { [event: `change:${string}`]: () => void } & { 'msg:custom'?: (msg: M) => void };

/** The attributes JupyterLab sets on the body when its theme changes. */
export const THEME_ATTRIBUTES = ['data-jp-theme-name', 'data-jp-theme-light'];

/** Subscribe every handler of the table to its event on ``model``; returns the one function that unsubscribes all. */
export function subscribe<M>(model: ModelEvents, handlers: PageHandlers<M>): () => void {
  const table = (Object.entries(handlers) as [string, (() => void) | undefined][])
    .filter((e): e is [string, () => void] => typeof e[1] === 'function');
  for (const [event, fn] of table) {
    model.on(event, fn);
  }
  return () => table.forEach(([event, fn]) => model.off(event, fn));
}

/** Call ``fn`` whenever JupyterLab switches its theme; returns the function that stops watching. */
export function watchTheme(fn: () => void, body: HTMLElement = document.body): () => void {
  const observer = new MutationObserver(() => fn());
  observer.observe(body, { attributes: true, attributeFilter: THEME_ATTRIBUTES });
  return () => observer.disconnect();
}

/** The served app's page: the token was in the URL for the first load only (the server keeps it in an HttpOnly
 * cookie from then on), so take it out of the address bar, the history and anything copied from there. */
export function dropTokenFromUrl(win: Window = window): boolean {
  const url = new URL(win.location.href);
  if (url.pathname !== '/' || !url.searchParams.has('token')) {
    return false; // not the served app's root (JupyterLab removes its own token)
  }
  url.searchParams.delete('token');
  win.history.replaceState(win.history.state, '', url.pathname + url.search + url.hash);
  return true;
}
