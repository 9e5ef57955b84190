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


#: torchvision's classification families, one model each: name -> (the smallest square input it takes, the
#: constructor's keyword arguments). tests/test_real_architectures.py (``-m zoo``) checks every analysis on each,
#: benchmarks/bench_models.py times them (at 224 px, or more where needed).
CLASSIFIERS: dict[str, tuple[int, dict]] = {
    "resnet50": (64, {}), "resnext50_32x4d": (64, {}), "vgg11": (64, {}), "densenet121": (64, {}),
    "squeezenet1_0": (64, {}), "shufflenet_v2_x1_0": (64, {}), "mnasnet1_0": (64, {}), "mobilenet_v2": (64, {}),
    "mobilenet_v3_large": (64, {}), "googlenet": (64, {"aux_logits": False, "init_weights": False}),
    "inception_v3": (299, {"aux_logits": False, "init_weights": False}), "regnet_y_400mf": (64, {}),
    "efficientnet_b0": (64, {}), "convnext_tiny": (64, {}), "vit_b_16": (224, {}), "swin_t": (224, {}),
}
