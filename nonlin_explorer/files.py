"""Paths that a page may name, confined to a folder chosen when the app starts.

A served app's page (and so any client that reaches it) can type a path into *Export to*; the path is resolved
inside ``root`` (symbolic links followed) and refused if it would land anywhere else. Nothing here imports a UI.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The longest path text a page may send (characters).
MAX_PATH_CHARS = 1024


class PathNotAllowed(ValueError):
    """A path outside the allowed folder (or not a usable name)."""


def confined_path(root: str | os.PathLike, text: object, *, default: str) -> Path:
    """``text`` (relative to ``root``, or absolute inside it) as an absolute path inside ``root``.

    Refused (:class:`PathNotAllowed`, naming what is allowed): non-text, empty after stripping and no default,
    over :data:`MAX_PATH_CHARS`, NUL bytes, ``~``, or a path whose resolved location (symbolic links followed,
    ``..`` applied) is not inside ``root``.
    """
    base = Path(root).resolve()
    if not isinstance(text, str):
        raise PathNotAllowed(f"a path must be text, got {type(text).__name__}")
    text = text.strip() or default
    if len(text) > MAX_PATH_CHARS:
        raise PathNotAllowed(f"a path may have at most {MAX_PATH_CHARS} characters, got {len(text)}")
    if "\0" in text:
        raise PathNotAllowed("a path may not contain NUL characters")
    if text.startswith("~"):
        raise PathNotAllowed(f"{text!r}: give a path inside {base} (no ~)")
    candidate = Path(text)
    full = candidate if candidate.is_absolute() else base / candidate
    resolved = full.resolve()  # follows symbolic links, applies ..
    if resolved != base and base not in resolved.parents:
        raise PathNotAllowed(f"{text!r} is outside the folder this app may write to ({base})")
    if resolved == base:
        raise PathNotAllowed(f"{text!r} is the folder itself: name a file inside {base}")
    return resolved
