"""Paths that a page may name, confined to a folder chosen when the app starts.

A served app's page (and so any client that reaches it) can type a path into *Export to*; the path is resolved
inside ``root`` (symbolic links followed) and refused if it would land anywhere else. Nothing here imports a UI.
"""

from __future__ import annotations

import os
import tempfile
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


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"cannot replace {b}: {os.strerror(err)}")


def old_copy(target: Path) -> Path:
    """Where :func:`replace_folder` keeps the previous folder during a two-step replace (where no exchange exists)."""
    return target.with_name(f".{target.name}.old")


def replace_folder(new: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the folder ``new`` at ``target`` in one step: a plain rename when ``target`` does not exist, an atomic
    exchange when it does (then the old folder is removed). Where the system has no exchange: two renames, and
    :func:`recover_folder` (called by the readers) puts the old folder back if the process died between them."""
    import shutil

    new, target = Path(new), Path(target)
    if not target.exists():
        os.replace(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now holds the old folder
        return
    old = old_copy(target)
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(target: str | os.PathLike) -> bool:
    """After a two-step :func:`replace_folder` killed half-way, ``target`` is missing and its old copy is there: put it
    back. True if it did."""
    target = Path(target)
    old = old_copy(target)
    if not target.exists() and old.is_dir():
        os.replace(old, target)
        return True
    return False


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Raise ``OSError`` now if ``path`` (a file, or a folder when ``folder``) cannot be written: fail before any work
    is lost. A file is probed by creating and removing one beside it, which also catches read-only and virtual file
    systems (``/proc``) and works for root, whom permission bits do not stop."""
    path = Path(path).expanduser()
    if not folder and path.is_dir():
        raise OSError(f"cannot write {path}: it is a folder (name a file inside it)")
    if folder and path.exists() and not path.is_dir():
        raise OSError(f"cannot write {path}: it exists and is not a folder")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OSError(f"cannot write {path}: folder {parent} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise OSError(f"cannot write {path}: permission denied")
    return path
