"""Checking what people type: numbers, lists of numbers, JSON objects, and command lines that answer a mistake with
one line. One place, so every UI, the CLI and the served apps say the same thing about the same mistake.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

__all__ = ["OneLineParser", "json_object", "parse_list", "parse_number"]


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
