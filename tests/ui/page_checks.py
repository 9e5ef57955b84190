"""What a person sees, measured in the page: text contrast (WCAG), horizontal overflow, clipped titles, frame rate,
and click -> visible latency. Shared by the browser tests and benchmarks/bench_live.py.

Every function takes a Playwright page (or frame) and looks through open shadow roots (the served apps render inside
them). Canvas text is out of scope: only DOM text is checked.
"""

from __future__ import annotations

import statistics
import time

#: Helpers installed once per page: a deep query over shadow roots, colour parsing, contrast.
_LIB = """() => {
  if (window.__neChecks) return;
  const deep = (sel, root = document) => { const out = [];
    const walk = r => { r.querySelectorAll(sel).forEach(e => out.push(e));
      r.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot); }); };
    walk(root); return out; };
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const parentOf = e => e.parentElement || (e.getRootNode() instanceof ShadowRoot ? e.getRootNode().host : null);
  const background = e => { for (let x = e; x; x = parentOf(x)) { const c = parse(getComputedStyle(x).backgroundColor);
      if (c && c.a >= 0.99) return c; } return { r: 255, g: 255, b: 255, a: 1 }; };
  const visible = e => { const r = e.getBoundingClientRect(); if (r.width < 1 || r.height < 1) return false;
    for (let x = e; x; x = parentOf(x)) { const s = getComputedStyle(x);
      if (s.display === 'none' || s.visibility === 'hidden' || Number(s.opacity) === 0) return false; } return true; };
  const ownText = e => Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
  window.__neChecks = { deep, parse, lum, background, visible, ownText, parentOf };
}"""

CONTRAST = """([rootSel, min]) => {
  const { deep, parse, lum, background, visible, ownText } = window.__neChecks;
  const roots = rootSel ? deep(rootSel) : [document.documentElement];
  const bad = []; let checked = 0;
  for (const root of roots) for (const e of [root, ...deep('*', root)]) {
    if (!ownText(e) || !visible(e) || e.closest('svg')) continue;
    if (e.tagName === 'OPTION' || e.tagName === 'SCRIPT' || e.tagName === 'STYLE') continue;
    const s = getComputedStyle(e); const fg = parse(s.color); if (!fg) continue;
    const bg = background(e);
    const mix = { r: fg.r * fg.a + bg.r * (1 - fg.a), g: fg.g * fg.a + bg.g * (1 - fg.a),
      b: fg.b * fg.a + bg.b * (1 - fg.a) };
    const [l1, l2] = [lum(mix), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05); checked++;
    if (ratio < min) bad.push({ text: e.textContent.trim().slice(0, 60), ratio: Math.round(ratio * 100) / 100,
      color: s.color, background: `rgb(${bg.r}, ${bg.g}, ${bg.b})`, cls: String(e.className).slice(0, 40) });
  }
  return { checked, bad };
}"""

SMALL_TEXT = """([rootSel, min]) => {
  const { deep, visible, ownText } = window.__neChecks;
  const out = [];
  for (const root of deep(rootSel)) for (const e of [root, ...deep('*', root)]) {
    if (!ownText(e) || !visible(e) || e.closest('svg') || e.tagName === 'OPTION') continue;
    const px = parseFloat(getComputedStyle(e).fontSize);
    if (px < min) out.push({ text: e.textContent.trim().slice(0, 40), px });
  }
  return out;
}"""

OVERFLOW = """(rootSel) => {
  const { deep } = window.__neChecks;
  const se = document.scrollingElement;
  const out = { document: se.scrollWidth - se.clientWidth, roots: [] };
  for (const r of deep(rootSel)) out.roots.push(r.scrollWidth - r.clientWidth);
  return out;
}"""

CLIPPED = """([rootSel, sel]) => {
  const { deep, visible, parentOf } = window.__neChecks;
  const out = [];
  for (const root of deep(rootSel)) {
    const rb = root.getBoundingClientRect();
    for (const e of deep(sel, root)) {
      if (!visible(e)) continue;
      const r = e.getBoundingClientRect();
      const cut = e.scrollWidth > e.clientWidth + 1 || r.left < rb.left - 1 || r.right > rb.right + 1;
      if (cut) out.push({ text: e.textContent.trim().slice(0, 60), scroll: e.scrollWidth, client: e.clientWidth });
    }
  }
  return out;
}"""

ON_SCREEN = """([frameSel, targets, cap]) => {
  const { deep } = window.__neChecks;
  const frame = deep(frameSel)[0];
  if (!frame) return { error: `no ${frameSel}` };
  const f = frame.getBoundingClientRect();
  const top = Math.max(f.top, 0), bottom = Math.min(f.bottom, window.innerHeight);
  const left = Math.max(f.left, 0), right = Math.min(f.right, window.innerWidth);
  const out = {};
  for (const [name, sel] of Object.entries(targets)) {
    const e = deep(sel)[0];
    if (!e) { out[name] = { shown: 0, missing: true }; continue; }
    const r = e.getBoundingClientRect();
    const h = Math.min(r.height, cap);
    const seen = Math.max(0, Math.min(r.top + h, bottom) - Math.max(r.top, top));
    const across = Math.min(r.right, right) - Math.max(r.left, left);
    out[name] = { shown: h > 0 && across > 0 ? seen / h : 0, top: Math.round(r.top - f.top),
      height: Math.round(r.height), width: Math.round(r.width) };
  }
  out.frame = { width: Math.round(f.width), height: Math.round(f.height) };
  return out;
}"""

FPS = """async (secs) => { let n = 0; const t0 = performance.now();
  await new Promise(res => { const loop = t => { n++; if (t - t0 < secs * 1000) requestAnimationFrame(loop);
    else res(); }; requestAnimationFrame(loop); }); return n / secs; }"""

#: Time from pointerdown on a unit to its changed aria-label (polled each frame).
CLICK_TIMER = """() => {
  if (window.__neClicks) return; window.__neClicks = [];
  document.addEventListener('pointerdown', e => {
    const el = e.composedPath().find(x => x.classList && x.classList.contains('ne-unit'));
    if (!el) return;
    const before = el.getAttribute('aria-label'); const t0 = performance.now();
    const poll = () => { if (el.getAttribute('aria-label') !== before) { window.__neClicks.push(performance.now() - t0);
      return; } if (performance.now() - t0 < 30000) requestAnimationFrame(poll); };
    requestAnimationFrame(poll);
  }, true);
}"""


SWATCHES = """(rootSel) => {
  const { deep, parse, lum, background, visible, parentOf } = window.__neChecks;
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  return deep(rootSel + ' .ne-swatch').filter(visible).map(e => {
    const cs = getComputedStyle(e);
    const fill = parse(e.classList.contains('ne-box') ? cs.backgroundColor : cs.borderTopColor);
    const edge = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 1 ? parse(cs.outlineColor) : null;
    const bg = background(parentOf(e));  // what is behind the swatch, not its own fill
    return { label: e.parentElement.textContent.trim(), fill: ratio(fill, bg), edge: edge ? ratio(edge, bg) : 0 };
  });
}"""


def install(page) -> None:
    page.evaluate(_LIB)


def contrast(page, root: str | None = None, minimum: float = 4.5) -> dict:
    """``{checked, bad: [...]}``: visible DOM text under ``root`` (a CSS selector, shadow roots pierced) whose contrast
    with the first opaque background among its ancestors is below ``minimum``."""
    install(page)
    return page.evaluate(CONTRAST, [root, minimum])


def swatch_contrast(page, root: str = "body") -> list[dict]:
    """Every visible legend swatch under ``root``: the contrast of its colour and of its edge (0 if none) against the
    background behind it, as drawn (computed styles)."""
    install(page)
    return page.evaluate(SWATCHES, root)


def small_text(page, root: str, minimum: float = 14.0) -> list[dict]:
    """Visible DOM text under ``root`` set smaller than ``minimum`` px."""
    install(page)
    return page.evaluate(SMALL_TEXT, [root, minimum])


def overflow(page, root: str) -> dict:
    """Horizontal overflow in px of the document's scrolling element and of each ``root`` (<= 0: none)."""
    install(page)
    return page.evaluate(OVERFLOW, root)


def clipped(page, root: str, selector: str) -> list[dict]:
    """Elements matching ``selector`` under ``root`` whose text is cut (scrolls) or that stick out of ``root``."""
    install(page)
    return page.evaluate(CLIPPED, [root, selector])


def on_screen(page, frame: str, targets: dict[str, str], cap: float = 200.0) -> dict:
    """How much of each target (name -> CSS selector, first match, shadow roots pierced) is on screen inside
    ``frame`` (a scrolling panel) without scrolling: ``{name: {shown, top, height, width}, frame: {...}}``, where
    ``shown`` is the fraction of the target's height, counted up to ``cap`` px, that lies inside the frame and the
    window."""
    install(page)
    return page.evaluate(ON_SCREEN, [frame, targets, cap])


def frames_per_second(page, seconds: float = 3.0) -> float:
    return page.evaluate(FPS, seconds)


def click_latencies(page, units, n: int, pause: float = 0.35) -> list[float]:
    """Click ``n`` different units (a locator of ``.ne-unit`` elements) with the mouse; the ms from each pointerdown
    until the unit's label changed in the page."""
    install(page)
    page.evaluate(CLICK_TIMER)
    start = page.evaluate("window.__neClicks.length")
    count = units.count()
    for k in range(n):
        el = units.nth((5 + 37 * k) % count)
        el.scroll_into_view_if_needed()
        box = el.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        time.sleep(pause)
    deadline = time.monotonic() + 10
    while page.evaluate("window.__neClicks.length") - start < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return page.evaluate(f"window.__neClicks.slice({start})")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


#: Console messages a browser test may see, each with why it is allowed. Everything else of type error fails a
#: test, and so does any other warning seen more than once (``console_problems``).
CONSOLE_ALLOWED = (
    # Bokeh logs this for a plot whose data has not arrived yet (auto ranges with nothing to fit): the explorer's
    # convergence and loss-vs-M plots are empty until the first result and the first Loss vs M click.
    (r"^\[bokeh [\d.]+\] could not set initial ranges$", "Bokeh: a plot drawn before its data arrives"),
)


def console_problems(messages: list[tuple[str, str]]) -> list[str]:
    """From ``(type, text)`` console messages: errors, and warnings seen more than once, not in CONSOLE_ALLOWED."""
    import re

    def allowed(text: str) -> bool:
        return any(re.search(pattern, text) for pattern, _ in CONSOLE_ALLOWED)

    errors = [f"error: {t}" for kind, t in messages if kind == "error" and not allowed(t)]
    warnings = [t for kind, t in messages if kind == "warning" and not allowed(t)]
    repeated = sorted({f"warning x{warnings.count(t)}: {t}" for t in warnings if warnings.count(t) > 1})
    return errors + repeated
