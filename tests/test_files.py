"""The one file writer (nonlin_explorer.files): names refused before any library sees them, nothing written outside
the folder or through a link, never a device, folder or link replaced, a complete file however many processes write
at once, a lock that a killed process gives back, and nothing left behind when a write fails."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from nonlin_explorer import files
from nonlin_explorer.files import FileInUse, PathNotAllowed, check_name, confined_path, hold, write_file
from nonlin_explorer.results import read_netcdf, write_netcdf


def dataset(value: float = 1.0, n: int = 8) -> xr.Dataset:
    return xr.Dataset({"a": ("x", np.full(n, value))}, attrs={"value": value})


def leftovers(folder: Path) -> list[str]:
    """Temporary and lock files in ``folder`` (hidden names ending in .tmp / .lock / .old)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.suffix in (".tmp", ".lock", ".old"))


# -- names ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, message", [
    ("a\\b.nc", "backslash"),
    ("\\..\\outside\\x.nc", "backslash"),
    ("x\0.nc", "NUL"),
    ("x\n.nc", "line breaks"),
    ("x\r.nc", "line breaks"),
    ("cod\u202egnp.nc", "bidirectional control character U+202E"),
    ("x\u202a.nc", "U+202A"),
    ("x\u2066.nc", "U+2066"),
    ("x\u2069.nc", "U+2069"),
    ("x\x1b[31m.nc", "control character U+001B"),
    ("x\x7f.nc", "control character U+007F"),
    ("x\t.nc", "control character U+0009"),
])
def test_names_with_separators_control_or_bidi_characters_are_refused(name, message, tmp_path):
    message = re.escape(message)
    with pytest.raises(PathNotAllowed, match=message):
        check_name(name)
    with pytest.raises(PathNotAllowed, match=message):
        confined_path(tmp_path, name, default="x.nc")
    with pytest.raises(PathNotAllowed, match=message):
        write_netcdf(dataset(), tmp_path / name)
    assert not list(tmp_path.iterdir())  # refused before anything was created


@pytest.mark.parametrize("name", ["results.nc", "run 1.nc", "résultats.nc", "結果.nc", "a-b_c.d.nc"])
def test_ordinary_names_pass(name, tmp_path):
    assert check_name(name) == name
    assert read_netcdf(write_netcdf(dataset(), tmp_path / name)).attrs["value"] == 1.0


def test_a_backslash_path_never_escapes_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "x.nc").write_bytes(b"keep")
    with pytest.raises(PathNotAllowed, match="backslash"):
        confined_path(root, "\\..\\outside\\x.nc", default="r.nc")
    assert (outside / "x.nc").read_bytes() == b"keep" and not list(root.iterdir())


# -- temporary files and links -------------------------------------------------------------------------------

def test_a_link_planted_at_the_old_fixed_temporary_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    root = tmp_path / "root"
    root.mkdir()
    (root / ".planted.nc.tmp").symlink_to(victim)
    written = write_netcdf(dataset(2.0), root / "planted.nc")
    assert victim.read_bytes() == b"precious"
    assert not written.is_symlink() and read_netcdf(written).attrs["value"] == 2.0
    assert (root / ".planted.nc.tmp").is_symlink()  # not ours: left alone


def test_links_planted_at_every_temporary_name_tried_are_skipped(tmp_path, monkeypatch):
    """The names are random; here they are known in advance and the first three are planted links."""
    names = [f".run.nc.{i}.tmp" for i in range(5)]
    monkeypatch.setattr(files, "_temp_names", lambda name: iter(names))
    victims = []
    for i, name in enumerate(names[:3]):
        victim = tmp_path / f"victim{i}"
        victim.write_bytes(b"precious")
        victims.append(victim)
        (tmp_path / name).symlink_to(victim)
    written = write_netcdf(dataset(3.0), tmp_path / "run.nc")
    assert all(v.read_bytes() == b"precious" for v in victims)
    assert read_netcdf(written).attrs["value"] == 3.0
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_symlink()) == sorted(names[:3])
    assert not (tmp_path / names[3]).exists()  # the temporary file used became run.nc


def test_a_temporary_file_swapped_for_a_link_while_written_is_not_renamed_into_place(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "run.nc"
    target.write_bytes(b"old")

    def swap(tmp):
        tmp.path.unlink()
        tmp.path.symlink_to(victim)

    with pytest.raises(OSError, match="removed or replaced while it was written"):
        write_file(target, swap)
    assert target.read_bytes() == b"old" and not target.is_symlink() and victim.read_bytes() == b"precious"


def test_a_failing_write_leaves_the_target_as_it_was_and_no_temporary_file(tmp_path):
    target = tmp_path / "run.nc"
    target.write_bytes(b"old")

    def half_then_fail(tmp):
        tmp.file.write(b"half")
        raise RuntimeError("NetCDF: HDF error")

    with pytest.raises(RuntimeError, match="HDF error"):
        write_file(target, half_then_fail)
    for exc in (KeyboardInterrupt, SystemExit):
        with pytest.raises(exc):
            write_file(target, lambda tmp, exc=exc: (_ for _ in ()).throw(exc()))
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["run.nc"]


# -- what is never replaced ------------------------------------------------------------------------------------

def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link_outside(path: Path) -> None:
    outside = path.parent.parent / "outside.txt"
    outside.write_bytes(b"precious")
    path.symlink_to(outside)


def _folder(path: Path) -> None:
    path.mkdir()
    (path / "inner.txt").write_bytes(b"precious")


@pytest.mark.parametrize("make, message", [
    (_fifo, "named pipe"),
    (_link_outside, "symbolic link"),
    (_folder, "folder"),
])
@pytest.mark.parametrize("exists", ["replace", "refuse"])
def test_a_pipe_a_link_or_a_folder_is_never_replaced(make, message, exists, tmp_path):
    """A device (/dev/null) is refused the same way (not a regular file); a pipe stands in for it, as tests may not
    run as root."""
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "run.nc"
    make(target)
    before = os.lstat(target)
    with pytest.raises(OSError, match=message):
        write_netcdf(dataset(), target, exists=exists)
    with pytest.raises(OSError, match=message):
        write_file(target, lambda tmp: tmp.file.write(b"new"), exists=exists)
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert not leftovers(folder) and sorted(p.name for p in folder.iterdir()) == ["run.nc"]
    if target.is_symlink():
        assert target.read_bytes() == b"precious"


def test_exists_replace_refuse_or_rename(tmp_path):
    target = tmp_path / "results.nc"
    assert write_netcdf(dataset(1.0), target) == target
    assert write_netcdf(dataset(2.0), target) == target  # the Python API replaces a regular file
    assert read_netcdf(target).attrs["value"] == 2.0
    with pytest.raises(FileExistsError, match="exists"):
        write_netcdf(dataset(3.0), target, exists="refuse")
    assert write_netcdf(dataset(4.0), target, exists="rename") == tmp_path / "results-1.nc"
    assert write_netcdf(dataset(5.0), target, exists="rename") == tmp_path / "results-2.nc"
    assert [read_netcdf(tmp_path / n).attrs["value"] for n in ("results.nc", "results-1.nc", "results-2.nc")] == \
        [2.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="exists must be one of"):
        write_netcdf(dataset(), target, exists="clobber")
    assert not leftovers(tmp_path)


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "run.nc"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_netcdf(dataset(), target)
    assert (target.stat().st_mode & 0o777) == 0o640


# -- several processes ------------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy as np, xarray as xr
    from nonlin_explorer.results import write_netcdf
    folder, value, trials = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    ds = xr.Dataset({"a": ("x", np.full(1_000_000, value))}, attrs={"value": value})
    write_netcdf(ds, os.path.join(folder, f"warm{value}.nc"))  # libraries loaded: the writes below overlap
    for trial in range(trials):
        print("ready", trial, flush=True)
        go = os.path.join(folder, f"go{trial}")
        while not os.path.exists(go):
            time.sleep(0.0005)
        write_netcdf(ds, os.path.join(folder, f"trial{trial}.nc"))
        print("wrote", trial, flush=True)
""")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(files.__file__).parents[1]),
                                                         os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


def _wait_for(proc: subprocess.Popen, line: str) -> None:
    while (got := proc.stdout.readline()) and got.strip() != line:
        pass
    assert got, f"the writer ended before {line!r}: {proc.stderr.read()}"


@contextlib.contextmanager
def _killed_after_block(code: str, target: Path, ready: str):
    """Run ``code`` in a child process on ``target``; once it prints ``ready``, run the block, then kill -9 it."""
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert proc.stdout.readline().strip() == ready
        yield proc
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()


def test_two_processes_writing_one_path_at_once_leave_one_complete_file(tmp_path):
    trials = 4
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(v), str(trials)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for v in (1.0, 2.0)]
    try:
        for trial in range(trials):
            for p in procs:
                _wait_for(p, f"ready {trial}")
            (tmp_path / f"go{trial}").touch()  # both start this write at the same moment
            for p in procs:
                _wait_for(p, f"wrote {trial}")  # every writer reported success ...
        for p in procs:
            p.communicate(timeout=60)
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0]
    for trial in range(trials):
        with xr.open_dataset(tmp_path / f"trial{trial}.nc", engine="netcdf4") as ds:  # ... and each file is whole
            value = ds.attrs["value"]
            assert value in (1.0, 2.0)
            np.testing.assert_array_equal(ds["a"].values, np.full(1_000_000, value))
    assert not leftovers(tmp_path)


HOLDER = textwrap.dedent("""
    import sys, time
    from nonlin_explorer.files import hold
    h = hold(sys.argv[1])
    print("held", flush=True)
    time.sleep(600)
""")


def test_a_held_path_is_refused_at_once_and_kill_9_of_its_holder_gives_it_back(tmp_path):
    target = tmp_path / "sweep.nc"
    with _killed_after_block(HOLDER, target, "held"):
        with pytest.raises(FileInUse, match="in use by another process"):
            hold(target)
    assert (tmp_path / ".sweep.nc.lock").exists()  # a killed holder leaves its lock file, but not its lock
    with hold(target):
        assert write_netcdf(dataset(7.0), target) == target  # the holder's own writes go ahead
        with pytest.raises(FileInUse, match="in use by another run in this process"):
            hold(target)
    assert read_netcdf(target).attrs["value"] == 7.0 and not leftovers(tmp_path)


def test_a_writer_waits_for_the_lock_and_a_killed_writer_releases_it(tmp_path):
    target = tmp_path / "run.nc"
    code = textwrap.dedent("""
        import sys, time
        from nonlin_explorer.files import write_file
        def slow(tmp):
            tmp.file.write(b"x")
            print("writing", flush=True)
            time.sleep(600)
        write_file(sys.argv[1], slow)
    """)
    with _killed_after_block(code, target, "writing"):
        with pytest.raises(FileInUse):
            hold(target)  # the writer holds the lock
    start = time.monotonic()
    assert write_netcdf(dataset(8.0), target) == target
    assert time.monotonic() - start < 10 and read_netcdf(target).attrs["value"] == 8.0
    assert not leftovers(tmp_path)  # the killed writer's temporary file went with the next write (under the lock)


FOLDER_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from nonlin_explorer.files import write_folder
    def slow(tmp):
        (tmp / "data").write_text("half")
        print("writing", flush=True)
        time.sleep(600)
    write_folder(sys.argv[1], slow, is_ours=lambda p: True, remove_old=lambda p: None)
""")


def test_a_killed_folder_writer_leaves_its_temporary_folder_only_until_the_next_write(tmp_path):
    target = tmp_path / "run.rec"
    with _killed_after_block(FOLDER_WRITER, target, "writing"):
        temp = [p for p in tmp_path.iterdir() if p.is_dir() and p.suffix == ".tmp"]
        assert len(temp) == 1 and (temp[0] / "data").read_text() == "half"
    assert temp[0].is_dir()  # a killed writer cannot clean up
    foreign = tmp_path / ".run.rec.notours.tmp"  # not a name the package makes: left alone
    foreign.mkdir()
    assert files.write_folder(target, _fill("whole"), is_ours=_ours, remove_old=_remove) == target
    assert (target / "data").read_text() == "whole"
    assert not temp[0].exists() and foreign.is_dir()
    assert leftovers(tmp_path) == [foreign.name]


def test_a_lock_file_planted_as_a_link_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / ".run.nc.lock").symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        write_netcdf(dataset(), tmp_path / "run.nc")
    assert victim.read_bytes() == b"precious" and not (tmp_path / "run.nc").exists()


def test_a_journal_is_never_opened_through_a_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "j.jsonl").symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        files.open_append(tmp_path / "j.jsonl")
    os.mkfifo(tmp_path / "p.jsonl")
    with pytest.raises(OSError, match="named pipe"):
        files.open_append(tmp_path / "p.jsonl")
    with files.open_append(tmp_path / "ok.jsonl") as fh:
        fh.write("{}\n")
    assert victim.read_bytes() == b"precious" and (tmp_path / "ok.jsonl").read_text() == "{}\n"


# -- folders ---------------------------------------------------------------------------------------------------

def _ours(folder: Path) -> bool:
    return (folder / "data").is_file() and {p.name for p in folder.iterdir()} <= {"data"}


def _remove(folder: Path) -> None:
    (folder / "data").unlink()
    folder.rmdir()


def _fill(text: str):
    return lambda tmp: (tmp / "data").write_text(text)


def test_a_folder_is_replaced_only_if_it_is_ours_and_rename_never_touches_the_old(tmp_path):
    target = tmp_path / "store.d"
    assert files.write_folder(target, _fill("1"), is_ours=_ours, remove_old=_remove) == target
    assert files.write_folder(target, _fill("2"), is_ours=_ours, remove_old=_remove) == target
    assert (target / "data").read_text() == "2"
    (target / "notes.txt").write_text("mine")  # now it holds something we did not write
    with pytest.raises(OSError, match="is not a folder this package wrote"):
        files.write_folder(target, _fill("3"), is_ours=_ours, remove_old=_remove)
    assert files.write_folder(target, _fill("4"), exists="rename", is_ours=_ours, remove_old=_remove) == \
        tmp_path / "store-1.d"
    assert (target / "notes.txt").read_text() == "mine" and (target / "data").read_text() == "2"
    assert (tmp_path / "store-1.d" / "data").read_text() == "4"
    assert not leftovers(tmp_path)


def test_a_failed_folder_write_removes_only_the_new_folder(tmp_path):
    unrelated = tmp_path / ".store.d.tmp"  # the name a fixed temporary folder used to have
    unrelated.mkdir()
    (unrelated / "keep").write_text("mine")

    def fail(tmp):
        (tmp / "data").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        files.write_folder(tmp_path / "store.d", fail, is_ours=_ours, remove_old=_remove)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".store.d.tmp"]
    assert (unrelated / "keep").read_text() == "mine"
