"""A served app's settings in its URL's query (``?sparsity=0.003&width=48``): read once when a tab opens, written
back whenever the settings change, so a URL shares or bookmarks a run. Never the access token: the page keeps
that in a cookie after the first load (ui.access), and the rewritten URL drops it.

Pure functions over strings; the served app (ui.serve) validates the values as the page's form would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

#: What the dashboard's URL may carry: its run settings, in form order. One list for Python and the front end:
#: ``dashboard_settings.json`` beside this module (``js/scripts/generate-tables.mjs`` reads it too).
DASHBOARD_KEYS: tuple[str, ...] = tuple(
    json.loads(Path(__file__).with_name("dashboard_settings.json").read_text(encoding="utf-8"))["keys"])
#: What the compression explorer's URL may carry: the fields of its ExplorerParams.
EXPLORER_KEYS = ("N", "M", "d", "weight_dist", "w_mean", "w_spread", "a_mean", "a_std", "seed", "activation",
                 "method")
#: What the early-vs-late view's URL may carry: the stored set drawn and the grid of new runs.
ADVANTAGE_KEYS = ("set", "sparsities", "seeds", "epochs")
#: Longest value taken from a URL (anything longer is a mistake or an attack, not a setting).
MAX_VALUE_CHARS = 64


def from_query(args: Mapping[str, Iterable[bytes | str]], keys: Iterable[str]) -> dict[str, str]:
    """The settings among ``args`` (a query as Tornado gives it: name -> values), as strings: only ``keys``, the
    last value of each. Raises ValueError naming a value that is too long, not text, or not printable ASCII (no
    setting is written otherwise: '５' is not 5)."""
    out: dict[str, str] = {}
    for key in keys:
        values = list(args.get(key, ()))
        if not values:
            continue
        value = values[-1]
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{key}: not UTF-8 text") from None
        if len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"{key}: longer than {MAX_VALUE_CHARS} characters")
        if not (value.isascii() and value.isprintable()):
            raise ValueError(f"{key}: not printable ASCII ({value!r}; digits are 0-9 only)")
        out[key] = value
    return out


def to_query(settings: Mapping[str, Any], keys: Iterable[str]) -> str:
    """``?key=value&...`` for the settings among ``keys`` that have a value (in ``keys`` order), or ``""``."""
    pairs = [(k, _text(settings[k])) for k in keys if settings.get(k) is not None and settings.get(k) != ""]
    return "?" + urlencode(pairs) if pairs else ""


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}" if value == float(f"{value:g}") else repr(value)
    return str(value)
