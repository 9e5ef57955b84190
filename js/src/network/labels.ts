/**
 * Layer labels under the columns: a name that does not fit is shortened from the left, so the distinctive tail
 * stays ("features.8" -> "…es.8", "layer1.0.relu" -> "…0.relu"); the full name goes in the element's title.
 */

const ELLIPSIS = '\u2026';

/**
 * The longest tail of `name` that `fits`, after an ellipsis: whole dotted parts when at least two of them fit,
 * else as many characters as fit; the last character with its ellipsis when nothing fits.
 */
export function shortenLeft(name: string, fits: (text: string) => boolean): string {
  if (fits(name)) {
    return name;
  }
  const parts = name.split('.');
  for (let k = 1; k < parts.length - 1; k++) {
    const text = ELLIPSIS + parts.slice(k).join('.');
    if (fits(text)) {
      return text;
    }
  }
  for (let k = 1; k < name.length - 1; k++) {
    const text = ELLIPSIS + name.slice(k);
    if (fits(text)) {
      return text;
    }
  }
  return ELLIPSIS + name.slice(-1);
}

/** Room (px) for each label centred at `centres` (increasing) between 0 and `width`: halfway to each neighbour. */
export function labelRoom(centres: number[], width: number, gap = 4): number[] {
  return centres.map((c, i) => {
    const left = i > 0 ? (c - centres[i - 1]) / 2 : c;
    const right = i < centres.length - 1 ? (centres[i + 1] - c) / 2 : width - c;
    return Math.max(0, 2 * Math.min(left, right) - gap);
  });
}
