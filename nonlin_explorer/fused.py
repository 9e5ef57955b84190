"""Fused CPU gate kernels, built once per machine: ``lerp(act(x), x, alpha)`` forward and backward.

ReLU, LeakyReLU, ReLU6 and Hardtanh gates run one C++ pass forward and one backward, repeating the eager paths'
arithmetic (the same roundings, and on small inputs torch's own reduction: see ``fused_gates.cpp``), so a run gives
the same numbers whether or not the kernels are built. GELU (both forms), SiLU, Hardswish, ELU/SELU and Mish gates
compute the activation and its derivative with torch's vector math (``at::vec::Vectorized``) in the same passes:
their output and gradients equal the eager gate's up to rounding. The kernels run on torch's threads
(``at::parallel_for``) and sum d alpha in a fixed order, so the numbers do not depend on the thread count. They are
compiled by ``nonlin-explorer kernels`` (the setup command runs it; about 45-60 s, a C++ compiler and ninja needed)
into a cache folder keyed by the source, the flags, torch's version, the Python version and the CPU; at run time a
built library is only loaded, never compiled. Without one, or with ``NONLIN_EXPLORER_FUSED=0``, gates run eagerly;
:func:`status` says which and why.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import platform
import sys
import threading
import time
from pathlib import Path

#: The C++ source, shipped in the package.
SOURCE = Path(__file__).with_name("fused_gates.cpp")

#: Set to ``0`` to run every gate eagerly (an A/B of the kernels, or a machine where they misbehave).
FUSED_ENV = "NONLIN_EXPLORER_FUSED"

#: Compiler flags: optimized for this CPU, no multiply-add contracted behind the source's back (the kernels must
#: round as torch's eager ops do), and OpenMP for torch's ``at::parallel_for`` (the kernels run on torch's threads).
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fopenmp")


def _capability_flags() -> list[str]:
    """The SIMD width of torch's vector type (``at::vec::Vectorized``, used by the smooth activations' kernels) for
    this CPU, as torch's own builds name it; without AVX2 the portable fallback."""
    flags = set(_cpu_flags().split())
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return ["-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512"]
    if {"avx2", "fma"} <= flags:
        return ["-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return []


def _cflags() -> list[str]:
    return [*FLAGS, *_capability_flags()]


def _link_flags() -> list[str]:
    """Link against the OpenMP runtime torch itself loaded (its wheels ship ``libgomp.so.1``): one runtime and one
    thread pool in the process, sized by ``torch.set_num_threads``; the compiler's own where torch has none."""
    import torch

    bundled = Path(torch.__file__).parent / "lib" / "libgomp.so.1"
    return [str(bundled)] if bundled.exists() else ["-fopenmp"]

#: Gate kinds the kernels know (``fused_gates.cpp``'s ``Kind``), and the numerics of each eager path (``Numerics``).
RELU, LEAKY_RELU, HARDTANH = 0, 1, 2
GELU, GELU_TANH, SILU, HARDSWISH, ELU, MISH = 3, 4, 5, 6, 7, 8
#: The smooth kinds: computed with torch's vector math in one pass each way, equal to the eager gate up to rounding.
SMOOTH = frozenset({GELU, GELU_TANH, SILU, HARDSWISH, ELU, MISH})
AUTOGRAD, PRELU, FUNCTION = 0, 1, 2

_LOCK = threading.Lock()
_STATE: dict = {"module": None, "reason": None, "loaded": False}


def _cpu_flags() -> str:
    """The CPU's feature flags (a library built with -march=native must not load on a CPU without them)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def _key() -> str:
    """What the built library depends on, hashed (once per process: it reads the source and /proc/cpuinfo)."""
    import torch

    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), torch.__version__.encode(), sys.version.encode(), " ".join(_cflags()).encode(),
                 platform.machine().encode(), _cpu_flags().encode()):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where the built library lives: ``$XDG_CACHE_HOME/nonlin_explorer/fused/<key>`` (``~/.cache`` by default)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "nonlin_explorer" / "fused" / _key()


def _name() -> str:
    return f"nonlin_explorer_fused_{_key()}"


def library_path() -> Path:
    """The built library's file (it may not exist)."""
    from importlib.machinery import EXTENSION_SUFFIXES

    suffix = ".so" if ".so" in EXTENSION_SUFFIXES else EXTENSION_SUFFIXES[-1]
    return cache_dir() / f"{_name()}{suffix}"


def build(verbose: bool = False) -> Path:
    """Compile the kernels into :func:`cache_dir` (nothing to do when built) and return the library's path.

    Raises ``RuntimeError`` with one line when it cannot (no compiler, no ninja, a compile error)."""
    path = library_path()
    if path.exists():
        return path
    import shutil

    missing = [tool for tool in ("c++", "ninja") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"cannot build the fused gate kernels: {' and '.join(missing)} not found on PATH")
    from torch.utils import cpp_extension

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        cpp_extension.load(_name(), [str(SOURCE)], extra_cflags=_cflags(), extra_ldflags=_link_flags(),
                           build_directory=str(path.parent), verbose=verbose)
    except Exception as err:  # a compiler's many lines: the first one that says what failed
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise RuntimeError(f"cannot build the fused gate kernels: {first[:300]}") from err
    if not path.exists():
        raise RuntimeError(f"cannot build the fused gate kernels: no library at {path}")
    return path


def turned_off() -> bool:
    """Whether ``NONLIN_EXPLORER_FUSED=0`` asks for eager gates (read at every call, so a process can compare)."""
    return os.environ.get(FUSED_ENV, "") == "0"


def kernels():
    """The loaded kernel module, or None (turned off, not built, or failed to load: :func:`status` says why).
    Loaded once per process on first use; never compiles."""
    if turned_off():
        return None
    if _STATE["loaded"]:
        return _STATE["module"]
    with _LOCK:
        if not _STATE["loaded"]:
            _STATE["module"], _STATE["reason"] = _load()
            _STATE["loaded"] = True
    return _STATE["module"]


def _load():
    try:
        path = library_path()
        if not path.exists():
            return None, "not built (run: nonlin-explorer kernels)"
        spec = importlib.util.spec_from_file_location(_name(), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module, None
    except Exception as err:  # a broken or foreign library: eager gates, said by status()
        return None, f"could not load {path.name}: {type(err).__name__}: {str(err)[:200]}"


def status() -> dict:
    """``{"fused": bool, "reason": why not or None, "library": path}`` (loads the kernels if not yet loaded)."""
    module = kernels()
    reason = f"turned off ({FUSED_ENV}=0)" if turned_off() else _STATE["reason"]
    return {"fused": module is not None, "reason": reason, "library": str(library_path())}


def build_and_say(verbose: bool = False) -> int:
    """``nonlin-explorer kernels``: build the kernels, one line either way; exit 0 also when they cannot be built
    (gates then run eagerly, with the same numbers)."""
    start = time.perf_counter()
    try:
        path = build(verbose=verbose)
    except RuntimeError as err:
        print(f"{err}; gates run eagerly (the same numbers, slower)")
        return 0
    print(f"fused gate kernels ready ({time.perf_counter() - start:.1f} s): {path}")
    return 0
