/**
 * Labels beside points that never overlap each other or the points: each label tries positions around its point,
 * outward from the centre first, and takes the first free one inside the bounds (clear of `avoid`, and of a ring
 * when given, too).
 */

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export function overlaps(a: Box, b: Box, pad = 0): boolean {
  return a.x < b.x + b.w + pad && b.x < a.x + a.w + pad && a.y < b.y + b.h + pad && b.y < a.y + a.h + pad;
}

/** Whether the circle of radius `ring` around `centre` passes through `box` (within `pad` pixels). */
export function crossedBy(box: Box, centre: { x: number; y: number }, ring: number, pad = 2): boolean {
  const nx = Math.max(box.x, Math.min(centre.x, box.x + box.w)) - centre.x;
  const ny = Math.max(box.y, Math.min(centre.y, box.y + box.h)) - centre.y;
  const fx = Math.max(Math.abs(box.x - centre.x), Math.abs(box.x + box.w - centre.x));
  const fy = Math.max(Math.abs(box.y - centre.y), Math.abs(box.y + box.h - centre.y));
  return Math.hypot(nx, ny) < ring + pad && Math.hypot(fx, fy) > ring - pad;
}

/**
 * Boxes for labels of size `sizes[i]` beside `points[i]` (pixels): outward from `centre`, at increasing distance
 * and angle, avoiding earlier labels, every point (a disc of `radius`), the bounds' edges and, given `ring`, the
 * circle of that radius around `centre` (a chart's unit circle: a label across its line is hard to read).
 */
export function placeLabels(points: { x: number; y: number }[], sizes: { w: number; h: number }[],
  centre: { x: number; y: number }, radius: number, bounds: Box, avoid: Box[] = [], ring?: number): Box[] {
  const discs: Box[] = [...points.map(p => ({ x: p.x - radius, y: p.y - radius, w: 2 * radius, h: 2 * radius })),
    ...avoid];
  const placed: Box[] = [];
  const inside = (b: Box) => b.x >= bounds.x && b.y >= bounds.y && b.x + b.w <= bounds.x + bounds.w &&
    b.y + b.h <= bounds.y + bounds.h;
  points.forEach((p, i) => {
    const { w, h } = sizes[i];
    const dx = p.x - centre.x;
    const dy = p.y - centre.y;
    const out = Math.hypot(dx, dy) > 1e-6 ? Math.atan2(dy, dx) : -Math.PI / 4;
    let best: Box | null = null;
    search: for (const gap of [3, 9, 18, 30, 45]) {
      for (let k = 0; k < 24; k++) {
        const turn = (k % 2 ? 1 : -1) * Math.ceil(k / 2) * (Math.PI / 12);
        const a = out + turn;
        const c = Math.cos(a);
        const s = Math.sin(a);
        const reach = radius + gap + Math.abs(c) * w / 2 + Math.abs(s) * h / 2;
        const box = { x: p.x + c * reach - w / 2, y: p.y + s * reach - h / 2, w, h };
        if (!inside(box) || placed.some(b => overlaps(b, box, 1)) || discs.some(d => overlaps(d, box)) ||
          (ring !== undefined && crossedBy(box, centre, ring))) {
          continue;
        }
        best = box;
        break search;
      }
    }
    if (!best) { // nowhere free: keep inside the bounds, as near as the outward direction allows
      const reach = radius + 3 + w / 2;
      const x = Math.min(bounds.x + bounds.w - w, Math.max(bounds.x, p.x + Math.cos(out) * reach - w / 2));
      const y = Math.min(bounds.y + bounds.h - h, Math.max(bounds.y, p.y + Math.sin(out) * reach - h / 2));
      best = { x, y, w, h };
    }
    placed.push(best);
  });
  return placed;
}
