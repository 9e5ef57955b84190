"""The busy machine every benchmark measures beside: another process spinning one core (imported by the
``bench_*.py`` scripts, which run from this folder)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def cpu_hog(on: bool = True) -> Iterator[None]:
    """Another process spinning one core while the block runs (nothing when ``on`` is false); killed and reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
