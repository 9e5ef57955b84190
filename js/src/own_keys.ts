// Keys typed into a page's own controls stay theirs: the notebook around an output (JupyterLab's cell handlers)
// would otherwise take arrow keys and prevent their default, so a range input would not move from the keyboard.

const CONTROLS = /^(INPUT|SELECT|TEXTAREA)$/;

/** Stop keydown events from a control inside ``root`` at ``root`` (they still reach the control's own handlers). */
export function keepControlKeys(root: HTMLElement): void {
  root.addEventListener('keydown', (e: KeyboardEvent) => {
    const target = e.target as HTMLElement | null;
    if (target && CONTROLS.test(target.tagName)) {
      e.stopPropagation();
    }
  });
}
