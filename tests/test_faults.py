"""Faults on the way out of `nonlin-explorer train`, with real processes, signals and limits: a full disk (a file-size
limit), SIGTERM and two quick Ctrl-C end with the trained run on disk (or, where no place can take it, one line
saying so), never a traceback and never a stray temporary file."""

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import xarray as xr

import nonlin_explorer

PACKAGE_ROOT = str(Path(nonlin_explorer.__file__).parents[1])
TRAIN = ["train", "--dataset", "spirals", "--model", "mlp", "--width", "8", "--depth", "1", "--batch-size", "32",
         "--eval-every", "20"]


def folders(tmp_path: Path) -> dict[str, Path]:
    """The output folder and every fallback place (home, working and temporary folders), all inside the test's."""
    out = {name: tmp_path / name for name in ("out", "home", "cwd", "tmp")}
    for folder in out.values():
        folder.mkdir()
    return out


def env_for(places: dict[str, Path]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")]),
            "HOME": str(places["home"]), "TMPDIR": str(places["tmp"]), "OMP_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1"}


def all_files(places: dict[str, Path]) -> list[str]:
    """Every file (not folder) in the places, as ``place/name``; torch's own compile cache folder aside."""
    return sorted(str(p.relative_to(folder.parent)) for folder in places.values() for p in folder.rglob("*")
                  if not p.is_dir() and "torchinductor_" not in str(p))


def file_size_limit(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # SIGXFSZ stays ignored (Python's default)
    return apply


def test_a_file_size_limit_everywhere_is_one_line_with_no_traceback_and_no_temporary_file(tmp_path):
    places = folders(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "nonlin_explorer.cli", *TRAIN, "--epochs", "1", "--quiet",
         "--out", str(places["out"] / "r.nc"), "--checkpoint", str(places["out"] / "r.pt")],
        capture_output=True, text=True, timeout=300, cwd=places["cwd"], env=env_for(places),
        preexec_fn=file_size_limit(2048))
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(err) == 1, proc.stderr
    assert "the run (step" in err[0] and "was not saved" in err[0] and "r.nc" in err[0]
    for place in ("out", "home", "cwd", "tmp"):
        assert str(places[place]) in err[0]  # every place was tried, and named
    assert all_files(places) == []  # not one temporary file, lock file or partial copy


def test_a_file_size_limit_at_the_results_keeps_the_checkpoint_and_says_where(tmp_path):
    """A limit that a checkpoint of this tiny run fits under but its result set does not: the trained state is on
    disk (the checkpoint, with its history), and the one line says where."""
    places = folders(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "nonlin_explorer.cli", *TRAIN, "--epochs", "1", "--quiet",
         "--out", str(places["out"] / "r.nc"), "--checkpoint", str(places["out"] / "r.pt")],
        capture_output=True, text=True, timeout=300, cwd=places["cwd"], env=env_for(places),
        preexec_fn=file_size_limit(18_000))  # the checkpoint is about 15 KB, the result set 25 KB
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(err) == 1, proc.stderr
    assert f"its checkpoint is in {places['out'] / 'r.pt'}" in err[0]
    from nonlin_explorer.training import load_checkpoint

    back = load_checkpoint(places["out"] / "r.pt")
    assert back.step > 0 and len(back.history) >= 2
    assert all_files(places) == ["out/r.pt"]


class Train:
    """`train` in a subprocess, its stderr read on a thread so a test can wait for training to start."""

    def __init__(self, places: dict[str, Path], epochs: float = 2000):
        self.out = places["out"] / "r.nc"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nonlin_explorer.cli", *TRAIN, "--epochs", str(epochs), "--out", str(self.out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=places["cwd"], env=env_for(places))
        self.err = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := self.proc.stderr.read1(4096):
            self.err += chunk

    def wait_training(self, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while b"step/s" not in self.err:  # the progress bar shows a rate: steps are being taken
            assert self.proc.poll() is None and time.monotonic() < end, self.err[-500:].decode(errors="replace")
            time.sleep(0.05)

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out = self.proc.stdout.read().decode()
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code, out, self.err.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


@pytest.mark.parametrize("signals, code", [
    ([signal.SIGTERM], 128 + signal.SIGTERM),
    ([signal.SIGINT, signal.SIGINT], 128 + signal.SIGINT),  # two Ctrl-C, 0.1 s apart
    ([signal.SIGINT, signal.SIGTERM, signal.SIGINT], 128 + signal.SIGINT),
])
def test_signals_during_train_stop_it_and_the_run_is_written(signals, code, tmp_path):
    places = folders(tmp_path)
    run = Train(places)
    try:
        run.wait_training()
        for sig in signals:
            run.proc.send_signal(sig)
            time.sleep(0.1)
        rc, out, err = run.finish()
    finally:
        run.kill()
    assert rc == code, err
    assert "Traceback" not in err and f"{signal.Signals(signals[0]).name}: stopping after this step" in err
    assert out.startswith("stopped: step") and str(run.out) in out
    with xr.open_dataset(run.out, engine="netcdf4") as ds:  # the run as far as it went, complete
        assert ds.attrs["status"] == "stopped" and ds.sizes["step"] >= 1
        stopped_at = int(out.split("step ")[1].split(",")[0])
        assert 0 < stopped_at < 2000 * 47 and int(ds["step"].values[-1]) == stopped_at  # evaluated where it stopped
    assert all_files(places) == ["out/r.nc"]  # no temporary or lock file
