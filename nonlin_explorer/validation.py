"""Checking what people type: numbers, lists of numbers, JSON objects, and command lines that answer a mistake with
one line. One place, so every UI, the CLI and the served apps say the same thing about the same mistake.
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_SEED", "OneLineParser", "check_choice", "check_int", "check_mapping", "check_name", "check_number",
           "check_seed", "json_object", "parse_list", "parse_number"]

#: The largest seed: every generator the package seeds takes 0..2**32 - 1 (numpy's legacy seeding, used by the
#: MNIST-1D generator, allows no more; torch and the netCDF attributes that store it take this range too).
MAX_SEED = 2**32 - 1


def parse_number(text: Any, name: str, low: float | None = None, high: float | None = None,
                 integer: bool = False) -> float | int:
    """A number typed by a user (text or a number), or ``ValueError`` with a message fit to show them.

    Booleans are refused (``True`` is not 1 here), as are NaN and infinities; ``integer`` refuses 2.5 rather than
    truncating it.
    """
    if isinstance(text, bool):
        raise ValueError(f"{name}: expected a number, got {text!r}")
    if isinstance(text, str):
        text = text.strip()
        if not text:
            raise ValueError(f"{name}: enter a number")
        if not text.isascii():  # float() reads Arabic-Indic or full-width digits; a field shows them as typed
            raise ValueError(f"{name}: {text!r} is not a number (digits 0-9, '.', 'e' and a sign only)")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {text!r}")
    if integer:
        if value != int(value):
            raise ValueError(f"{name}: must be a whole number, got {text!r}")
        value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name}: must be >= {low:g}, got {value:g}")
    if high is not None and value > high:
        raise ValueError(f"{name}: must be <= {high:g}, got {value:g}")
    return value


def parse_list(text: Any, name: str, integer: bool = False, low: float | None = 0.0,
               high: float | None = None, max_items: int = 1000) -> list:
    """Comma- or space-separated numbers typed by a user (or a sequence), each checked as by :func:`parse_number`."""
    if not isinstance(text, str):
        text = ", ".join(str(v) for v in text)
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise ValueError(f"{name}: enter at least one number")
    if len(parts) > max_items:
        raise ValueError(f"{name}: at most {max_items} values, got {len(parts)}")
    return [parse_number(p, name, low=low, high=high, integer=integer) for p in parts]


def _scalar(value: Any) -> Any:
    """A one-element tensor or array, or a numpy scalar, as the Python number it holds; anything else unchanged."""
    if isinstance(value, (bool, int, float, complex, str)) or not hasattr(value, "item"):
        return value
    size = value.numel() if callable(getattr(value, "numel", None)) else getattr(value, "size", None)
    return value.item() if size == 1 else value


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """A finite real number in range (one-element tensors and numpy scalars too), or ``ValueError`` naming ``name``,
    what was given and what is allowed. A bool, a string or a complex number is refused, not coerced."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {_show(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {_show(value)}")
    if low is not None and (number < low or (low_open and number == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {number:g}")
    if high is not None and number > high:
        raise ValueError(f"{name} must be <= {high:g}, got {number:g}")
    return number


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """A whole number in [``low``, ``high``]: ints, numpy integers, whole floats (3.0) and one-element tensors are
    accepted; a bool, 2.5, NaN or text is refused with ``ValueError``."""
    value = _scalar(value)
    whole = isinstance(value, numbers.Integral) or (
        isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer())
    if isinstance(value, bool) or not whole:
        raise ValueError(f"{name} must be an integer, got {_show(value)}")
    number = int(value)
    if low is not None and number < low:
        raise ValueError(f"{name} must be >= {low}, got {number}")
    if high is not None and number > high:
        raise ValueError(f"{name} must be <= {high}, got {number}")
    return number


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: a whole number in 0..:data:`MAX_SEED`, or ``ValueError`` stating that range."""
    try:
        return check_int(name, value, low=0, high=MAX_SEED)
    except ValueError:
        raise ValueError(f"{name} must be a whole number in 0..{MAX_SEED}, got {_show(_scalar(value))}") from None


def check_choice(name: str, value: Any, choices) -> str:
    """One of ``choices`` (text, compared without case), returned in lower case; else ``ValueError`` listing them."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"unknown {name} {_show(value)}; valid {name}s: {', '.join(choices)}")
    return value.lower()


def check_mapping(name: str, value: Any) -> dict:
    """A dict of settings (a copy), or ``ValueError``: ``None`` or a list is not one."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict of settings, e.g. {{'width': 64}}, got {_show(value)}")
    if not all(isinstance(k, str) for k in value):
        raise ValueError(f"{name} must have text keys, got {list(value)!r}")
    return dict(value)


#: Characters that change how text is laid out, not what it says: a name holding one can display as another name
#: (a bidi override reverses what follows it) or break a line in a log, a file or a page.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_name(value: Any, what: str = "name", max_chars: int = 256) -> str:
    """A name a person gave (a layer, a run, a data set): non-empty text of at most ``max_chars`` characters without
    control characters (newline, carriage return, tab, NUL...), line separators or bidirectional overrides."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {_show(value)}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty, got {value!r}")
    if len(value) > max_chars:
        raise ValueError(f"{what} may have at most {max_chars} characters, got {len(value)}")
    for ch in value:
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            kind = unicodedata.name(ch, "") or "a control character"
            raise ValueError(f"{what} {_show(value)} contains U+{ord(ch):04X} ({kind}); names may not hold control, "
                             "line-break or bidirectional-override characters")
    return value


def _show(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shortened to ``limit`` characters (a message stays one readable line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_object(text: str) -> dict:
    """argparse type: a JSON object (settings given on the command line)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"epochs\": 100}'")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse's name
        self.exit(2, f"{self.prog}: error: {message}\n")
