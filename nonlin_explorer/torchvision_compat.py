"""Import torchvision's model code where its compiled ops do not load (PyPI's CUDA-linked wheel beside a CPU torch).

torchvision's models are pure Python; only its detection ops (nms, roi_align...) are compiled. When that library
does not load, ``import torchvision`` still fails: it registers fake kernels for ``torchvision::nms`` and ``qnms``,
ops that only the compiled library defines. :func:`import_torchvision` defines those two schemas (no kernels)
and imports again, so every classification model works; calling a compiled op still raises torchvision's own
"Couldn't load custom C++ ops" error. Nothing changes where torchvision imports normally.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import torch

#: The schemas torchvision registers fake kernels for unconditionally at import (torchvision 0.2x).
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_LIBRARY: torch.library.Library | None = None  # kept alive: dropping it would remove the schemas


def import_torchvision() -> ModuleType:
    """``torchvision``, imported even when its compiled ops cannot load (see the module docstring)."""
    global _LIBRARY
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # the failed, half-run import
    if _LIBRARY is None:
        _LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
        for op, schema in _SCHEMAS.items():
            if not hasattr(torch.ops.torchvision, op):
                _LIBRARY.define(schema)
    return importlib.import_module("torchvision")


def has_compiled_ops() -> bool:
    """Whether torchvision's compiled ops loaded (detection models need them; classification models do not)."""
    return bool(import_torchvision().extension._has_ops())
