"""Every file this package writes goes through here: names checked, paths confined, writes atomic and locked.

A served app's page (and so any client that reaches it) can type a path into *Export to*; :func:`confined_path`
resolves it inside ``root`` (symbolic links followed) and refuses it if it would land anywhere else.
:func:`write_file` and :func:`write_folder` write a result (netCDF, a checkpoint, a recording, a sweep's store) so
that a reader finds the old version or the complete new one under its name, never a half-written file:

- the name is checked before any library sees it (:func:`check_name`: no separator of any platform, no control or
  bidirectional-override character);
- the new content goes to a temporary file created exclusively (``O_EXCL``, ``O_NOFOLLOW``, a random name) beside
  the target, is flushed and fsynced, and is renamed into place; a symbolic link planted at any name is never
  followed, and the temporary file is removed on every failure path;
- only a regular file (or, for :func:`write_folder`, a folder of our own format) is ever replaced: a device, a pipe,
  a folder or a symbolic link at the target is a clear error. ``exists`` says what happens to an existing target:
  ``"replace"`` (the Python API's default), ``"refuse"`` or ``"rename"`` (a free name beside it: ``results-1.nc``;
  what pages use, so an export never destroys a file);
- writers of one path in different processes take turns: an OS lock (``flock``) on ``.NAME.lock`` beside it, which
  the kernel releases when a process dies, even by ``kill -9``. :func:`hold` keeps a path for a whole run (a sweep
  and its ``--out``): a second holder is refused at once with :class:`FileInUse`.

Nothing here imports a UI.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import threading
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

try:  # POSIX; elsewhere writers of one path in different processes are not serialized
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: The longest path text a page may send (characters).
MAX_PATH_CHARS = 1024
#: What :func:`write_file` does with an existing target.
EXISTS = ("replace", "refuse", "rename")
#: Bidirectional embedding, override and isolate characters: they make a name read differently than it is.
BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class PathNotAllowed(ValueError):
    """A path outside the allowed folder (or not a usable name)."""


class FileInUse(OSError):
    """Another process is writing this path (it holds its lock)."""


# -- names and paths ------------------------------------------------------------------------------------------

def name_problem(text: str) -> str | None:
    """Why ``text`` cannot be (part of) a file name this package writes, or None. Refused: NUL, newline and other
    control characters, bidirectional overrides (U+202A-202E, U+2066-2069) and the backslash, a separator on Windows
    that some libraries (netCDF) also translate to ``/`` on POSIX."""
    for ch in text:
        if ch == "\0":
            return "NUL characters"
        if ch == "\\":
            return "a backslash (\\): separate folders with /"
        if ch in "\n\r":
            return "line breaks"
        if ch in BIDI_CONTROLS:
            return f"the bidirectional control character U+{ord(ch):04X}"
        if unicodedata.category(ch) == "Cc":
            return f"the control character U+{ord(ch):04X}"
    return None


def check_name(text: str) -> str:
    """``text`` unchanged, or :class:`PathNotAllowed` naming the character that a file name may not contain."""
    problem = name_problem(text)
    if problem is not None:
        raise PathNotAllowed(f"{text!r}: a file name may not contain {problem}")
    return text


def confined_path(root: str | os.PathLike, text: object, *, default: str) -> Path:
    """``text`` (relative to ``root``, or absolute inside it) as an absolute path inside ``root``.

    Refused (:class:`PathNotAllowed`, naming what is allowed): non-text, empty after stripping and no default,
    over :data:`MAX_PATH_CHARS`, a character :func:`check_name` refuses (NUL, backslash, control, bidi), ``~``, or a
    path whose resolved location (symbolic links followed, ``..`` applied) is not inside ``root``.
    """
    base = Path(root).resolve()
    if not isinstance(text, str):
        raise PathNotAllowed(f"a path must be text, got {type(text).__name__}")
    text = text.strip() or default
    if len(text) > MAX_PATH_CHARS:
        raise PathNotAllowed(f"a path may have at most {MAX_PATH_CHARS} characters, got {len(text)}")
    problem = name_problem(text)
    if problem is not None:
        raise PathNotAllowed(f"a path may not contain {problem}")
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


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Raise ``OSError`` (or :class:`PathNotAllowed` for a bad name) now if ``path`` (a file, or a folder when
    ``folder``) cannot be written: fail before any work is lost. A file is probed by creating and removing one
    beside it, which also catches read-only and virtual file systems (``/proc``) and works for root, whom permission
    bits do not stop. An existing target must be what would be written: a regular file (never a device, pipe,
    folder or symbolic link) or, for ``folder``, a folder."""
    import tempfile

    path = Path(path).expanduser()
    check_name(path.name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None
    if st is not None:
        if not folder and stat.S_ISDIR(st.st_mode):
            raise OSError(f"cannot write {path}: it is a folder (name a file inside it)")
        if folder and not stat.S_ISDIR(st.st_mode):
            raise OSError(f"cannot write {path}: it exists and is not a folder ({_kind(st.st_mode)})")
        if not folder and not stat.S_ISREG(st.st_mode):
            raise OSError(f"cannot write {path}: it is {_kind(st.st_mode)}, not a regular file (never replaced)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OSError(f"cannot write {path}: folder {parent} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None
    if st is not None and not os.access(path, os.W_OK):
        raise OSError(f"cannot write {path}: permission denied")
    return path


def free_name(path: Path, number: int) -> Path:
    """``results.nc`` numbered: ``results-1.nc``, ``results-2.nc``, ... (``number`` 0: the path itself)."""
    if number == 0:
        return path
    return path.with_name(f"{path.stem}-{number}{path.suffix}")


# -- locks ----------------------------------------------------------------------------------------------------

def lock_path(target: Path) -> Path:
    """The lock file of ``target``: ``.NAME.lock`` beside it (removed by its last holder; a very long name is cut,
    so that the lock file's name stays within the file system's limit)."""
    return target.with_name(f".{target.name[:200]}.lock")


_GUARD = threading.Lock()
_THREAD_LOCKS: dict[str, threading.RLock] = {}  # writers of one path within this process take turns here
_HELD: set[str] = set()  # lock files this process holds for a whole run (hold): its own writers pass


def _open_lock(lockfile: Path, target: Path) -> int:
    try:
        fd = os.open(lockfile, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"cannot write {target}: its lock file {lockfile} is a symbolic link (not followed)") \
                from None
        raise OSError(f"cannot write {target}: {exc.strerror or exc}") from None
    return fd


def _acquire(target: Path, wait: bool) -> int | None:
    """An ``flock``-ed descriptor of ``target``'s lock file (the file still under that name), or
    :class:`FileInUse`."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    lockfile = lock_path(target)
    while True:
        fd = _open_lock(lockfile, target)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(f"cannot lock {lockfile}: it is {_kind(st.st_mode)}")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise FileInUse(errno.EBUSY, f"{target} is in use by another process (its lock {lockfile} is "
                                "held): wait for it to finish or choose another path") from None
            try:
                now = os.lstat(lockfile)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder removed it while we waited: lock the one under the name now


def _release(lockfile: Path, fd: int | None) -> None:
    if fd is None:  # pragma: no cover - Windows
        return
    try:
        with contextlib.suppress(OSError):
            os.unlink(lockfile)  # while holding it: a waiter sees the name gone and locks the next file
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(target: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of ``target`` (waiting for other writers, in this process and others) while the block runs."""
    lockfile = lock_path(Path(target))
    key = os.fspath(lockfile)
    with _GUARD:
        inner = _THREAD_LOCKS.setdefault(key, threading.RLock())
    with inner:
        if key in _HELD:  # this process holds it for a run (hold): its own writes go ahead
            yield
            return
        fd = _acquire(Path(target), wait=True)
        try:
            yield
        finally:
            _release(lockfile, fd)


class Hold:
    """A path kept by this process for a run (:func:`hold`); ``release()`` (or leaving ``with``) gives it back."""

    def __init__(self, target: Path):
        self.target = target
        self.lockfile = lock_path(target)
        key = os.fspath(self.lockfile)
        with _GUARD:
            if key in _HELD:
                raise FileInUse(errno.EBUSY, f"{target} is in use by another run in this process: choose another "
                                "path")
            _HELD.add(key)
        try:
            self._fd = _acquire(target, wait=False)
        except BaseException:
            with _GUARD:
                _HELD.discard(key)
            raise
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        key = os.fspath(self.lockfile)
        with _GUARD:
            inner = _THREAD_LOCKS.setdefault(key, threading.RLock())
        with inner:  # not while one of our own writes runs
            _release(self.lockfile, self._fd)
            with _GUARD:
                _HELD.discard(key)

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def hold(target: str | os.PathLike) -> Hold:
    """Keep ``target`` for this process until ``release()``: a second process (or run) asking for it gets
    :class:`FileInUse` at once, one line. This process's own :func:`write_file` calls on it go ahead."""
    return Hold(Path(os.path.abspath(Path(target).expanduser())))


# -- writing files ---------------------------------------------------------------------------------------------

def _temp_names(name: str) -> Iterator[str]:
    """Candidate names of a temporary file beside ``name`` (random, hidden; a planted one is skipped)."""
    for _ in range(100):
        yield f".{name[:128]}.{secrets.token_hex(6)}.tmp"


def _remove_stale(folder: Path, name: str, *, folders: bool = False) -> None:
    """Remove temporary files (``folders``: temporary folders) a killed writer of ``name`` left, named as
    :func:`_temp_names` names them; links and anything else are left. Called under the lock of ``name``: no other
    writer of it is running (a live one holds that lock while its temporary exists), so every such entry is stale."""
    import re

    pattern = re.compile(re.escape(f".{name[:128]}.") + r"[0-9a-f]{12}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if not pattern.fullmatch(entry.name):
                continue
            if folders and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            elif not folders and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


class TempFile:
    """A temporary file created exclusively beside a target: ``path`` for libraries that open by name (netCDF),
    ``file`` (binary, open) for those that take a file object (``torch.save``)."""

    def __init__(self, folder: Path, name: str):
        for candidate in _temp_names(name):
            path = folder / candidate
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o666)
            except FileExistsError:
                continue  # taken (or a planted link): another name
            break
        else:  # pragma: no cover - 100 random names all taken
            raise OSError(errno.EEXIST, f"cannot create a temporary file in {folder}")
        self.path = path
        self._fd = fd
        self._id = _identity(os.fstat(fd))
        self.file: IO[bytes] = os.fdopen(fd, "r+b")

    def finish(self) -> None:
        """Flush and fsync; ``OSError`` if the name no longer holds the file created (it was swapped)."""
        self.file.flush()
        os.fsync(self._fd)
        try:
            now = os.lstat(self.path)
        except FileNotFoundError:
            now = None
        if now is None or not stat.S_ISREG(now.st_mode) or _identity(now) != self._id:
            raise OSError(f"the temporary file {self.path} was removed or replaced while it was written: nothing "
                          "was written")

    def discard(self) -> None:
        """Close, and remove the temporary file if it is still the one created."""
        with contextlib.suppress(OSError, ValueError):
            self.file.close()
        with contextlib.suppress(OSError):
            if _identity(os.lstat(self.path)) == self._id:
                os.unlink(self.path)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _check_target(target: Path, exists: str) -> bool:
    """True if ``target`` exists (a regular file). ``FileExistsError`` for ``exists="refuse"``, ``OSError`` for
    anything but a regular file (a device, pipe, folder or symbolic link is never replaced)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"cannot write {target}: it is {_kind(st.st_mode)}, not a regular file (never replaced)")
    if exists == "refuse":
        raise FileExistsError(errno.EEXIST, f"{target} exists (not replaced): choose another name")
    return True


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _place_new(src: Path, path: Path, exists: str, place: Callable[[Path, Path], None]) -> Path:
    """``place(src, name)`` at ``path`` (``exists="refuse"``) or at its first free numbered name (``"rename"``), never
    over anything there (``place`` fails with ``FileExistsError`` on a taken name); the name used."""
    for number in range(10_000 if exists == "rename" else 1):
        written = free_name(path, number)
        try:
            place(src, written)
            return written
        except FileExistsError:
            if exists == "refuse":
                raise FileExistsError(errno.EEXIST, f"{path} exists (not replaced): choose another name") from None
    raise FileExistsError(errno.EEXIST, f"{path} and 10,000 numbered names beside it exist")  # pragma: no cover


def _link_new(src: Path, dst: Path) -> None:
    """Give ``src`` the name ``dst`` if ``dst`` is free (``FileExistsError`` otherwise), in one step."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:  # no hard links here (some FUSE or FAT file systems): check, then rename (under lock)
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, f"{dst} exists") from None
        os.replace(src, dst)
        return
    os.unlink(src)


def _check_exists(exists: str) -> None:
    if exists not in EXISTS:
        raise ValueError(f"exists must be one of {', '.join(EXISTS)}, got {exists!r}")


def write_file(path: str | os.PathLike, write: Callable[[TempFile], Any], *, exists: str = "replace") -> Path:
    """Write a file atomically: ``write(tmp)`` fills ``tmp.path`` (or ``tmp.file``), which then takes ``path``'s
    name in one rename. Returns the path written (another one for ``exists="rename"`` when ``path`` is taken).

    ``exists``: ``"replace"`` an existing regular file (the Python API's default), ``"refuse"`` it
    (``FileExistsError``), or ``"rename"``: write ``NAME-1.EXT`` (the first free number) instead. Never replaced:
    a device, pipe, folder or symbolic link (``OSError``). A name with a character :func:`check_name` refuses:
    :class:`PathNotAllowed`, before anything is created. On any failure the temporary file is removed and the
    target is as it was.
    """
    _check_exists(exists)
    path = Path(os.path.abspath(Path(path).expanduser()))
    check_name(path.name)
    folder = path.parent
    with locked(path):
        _check_target(path, exists)
        _remove_stale(folder, path.name)
        tmp = TempFile(folder, path.name)
        try:
            write(tmp)
            tmp.finish()
            written = path
            if exists == "replace":
                if _check_target(path, exists):  # still a regular file (or gone)
                    with contextlib.suppress(OSError):  # a replaced file keeps its mode
                        os.chmod(tmp.path, stat.S_IMODE(os.lstat(path).st_mode))
                os.replace(tmp.path, path)
            else:
                written = _place_new(tmp.path, path, exists, _link_new)
            tmp.file.close()
        except BaseException:
            tmp.discard()
            raise
    _fsync_dir(folder)
    return written


# -- writing folders -------------------------------------------------------------------------------------------

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2(a: Path, b: Path, flag: int) -> bool:
    """Linux ``renameat2(a, b, flag)``; False where that is not available (``OSError`` when it fails)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), flag) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"cannot write {b}: {os.strerror(err)}")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    return _renameat2(a, b, _RENAME_EXCHANGE)


def _move_new(src: Path, dst: Path) -> None:
    """Rename the folder ``src`` to ``dst`` only if ``dst`` does not exist (``FileExistsError`` otherwise)."""
    try:
        if _renameat2(src, dst, _RENAME_NOREPLACE):
            return
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, f"{dst} exists") from None
        raise
    if os.path.lexists(dst):  # no renameat2: check, then rename (under the lock)
        raise FileExistsError(errno.EEXIST, f"{dst} exists")
    os.rename(src, dst)


def _old_copies(target: Path) -> list[Path]:
    """Folders :func:`replace_folder` moved aside (newest first)."""
    found = [p for p in target.parent.glob(f".{glob_escape(target.name)}.*.old") if p.is_dir() and not p.is_symlink()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    import glob

    return glob.escape(text)


def replace_folder(new: str | os.PathLike, target: str | os.PathLike,
                   remove_old: Callable[[Path], Any] = shutil.rmtree) -> None:
    """Put the folder ``new`` at ``target`` in one step: a plain rename when ``target`` does not exist, an atomic
    exchange when it does (then ``remove_old`` gets the old folder). Where the system has no exchange: the old
    folder is moved to a unique ``.NAME.<random>.old`` name, the new one renamed in, and :func:`recover_folder`
    (called by the readers) puts the old one back if the process died between the two steps."""
    import tempfile

    new, target = Path(new), Path(target)
    if not os.path.lexists(target):
        os.replace(new, target)
        return
    if _exchange(new, target):
        remove_old(new)  # now holds the old folder
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name[:128]}.", suffix=".old", dir=target.parent))
    os.replace(target, old)  # replaces the empty folder just made
    os.replace(new, target)
    remove_old(old)


def recover_folder(target: str | os.PathLike, is_ours: Callable[[Path], bool] | None = None) -> bool:
    """After a two-step :func:`replace_folder` killed half-way, ``target`` is missing and its old copy is there: put
    it back (the newest copy that ``is_ours`` accepts; default: any non-empty folder). True if it did."""
    target = Path(target)
    if os.path.lexists(target):
        return False
    for old in _old_copies(target):
        if (is_ours or (lambda p: any(p.iterdir())))(old):
            os.replace(old, target)
            return True
    return False


def _make_folder(folder: Path, name: str) -> Path:
    """A new, empty folder beside ``name`` under a random hidden name (``mkdir`` fails on anything there, a link
    included; its mode is what ``mkdir`` gives, umask applied)."""
    for candidate in _temp_names(name):
        try:
            os.mkdir(folder / candidate, 0o777)
        except FileExistsError:
            continue
        return folder / candidate
    raise OSError(errno.EEXIST, f"cannot create a temporary folder in {folder}")  # pragma: no cover


def write_folder(path: str | os.PathLike, write: Callable[[Path], Any], *, exists: str = "replace",
                 is_ours: Callable[[Path], bool], remove_old: Callable[[Path], Any],
                 what: str = "folder this package wrote") -> Path:
    """Write a folder atomically: ``write(tmp)`` fills a new folder (created exclusively beside ``path``), which then
    takes ``path``'s name in one step. Returns the path written.

    ``exists``: ``"replace"`` an existing folder only if ``is_ours(folder)`` (one this package wrote; the old one goes
    to ``remove_old``, which should delete only what it knows), ``"refuse"`` (``FileExistsError``) or ``"rename"``:
    ``NAME-1.EXT``. Anything else at ``path`` (a file, a link, a foreign folder) is never replaced. On any failure
    the new folder is removed (it was created here) and ``path`` is as it was.
    A killed writer's temporary folder (``.NAME.<random>.tmp``, whose writer no longer holds the lock) goes with the
    next write to ``path``.
    """
    _check_exists(exists)
    path = Path(os.path.abspath(Path(path).expanduser()))
    check_name(path.name)
    with locked(path):
        recover_folder(path, is_ours)
        _remove_stale(path.parent, path.name, folders=True)  # a killed writer's half-written folder
        if os.path.lexists(path) and exists != "rename":
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                raise OSError(f"cannot write {path}: it is {_kind(st.st_mode)}, not a {what} (never replaced)")
            if exists == "refuse":
                raise FileExistsError(errno.EEXIST, f"{path} exists (not replaced): choose another name")
            if not is_ours(path):
                raise OSError(f"cannot write {path}: it exists and is not a {what} (not replaced)")
        tmp = _make_folder(path.parent, path.name)
        try:
            write(tmp)
            _fsync_dir(tmp)
            written = path
            if exists == "replace":
                replace_folder(tmp, path, remove_old)  # one step: never missing under its name
            else:
                written = _place_new(tmp, path, exists, _move_new)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    _fsync_dir(path.parent)
    return written


def open_append(path: str | os.PathLike) -> IO[str]:
    """``path`` opened for appending text (created if missing), never through a symbolic link and only if it is a
    regular file: a journal that ``fsync`` keeps safe line by line."""
    path = Path(path)
    check_name(path.name)
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)  # a pipe would block the open below: refuse it first
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"cannot write {path}: it is {_kind(st.st_mode)}, not a regular file")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"cannot write {path}: it is a symbolic link (not followed)") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(f"cannot write {path}: it is {_kind(st.st_mode)}, not a regular file")
    return os.fdopen(fd, "a")
