"""Binary, typed arrays for widget state: ``{"view": memoryview, "dtype": str, "shape": [int]}``.

ipywidgets sends every ``memoryview`` in a trait as a binary buffer (no JSON lists); the front end decodes
it once into a typed array (``js/src/codecs.ts``, the mirror of this module).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: dtypes the front end decodes (``js/src/codecs.ts``).
DTYPES = ("float32", "uint8")


def array_to_binary(values: Any, dtype: str) -> dict[str, Any]:
    """Pack ``values`` (array-like or torch tensor) as a binary typed array of ``dtype``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if hasattr(values, "detach"):  # a torch tensor, maybe on a GPU
        values = values.detach().cpu().numpy()
    arr = np.ascontiguousarray(values, dtype=dtype)
    return {"view": memoryview(arr.reshape(-1)), "dtype": dtype, "shape": list(arr.shape)}


def binary_to_array(data: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`array_to_binary` (a read-only view when given a memoryview)."""
    dtype = data["dtype"]
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return np.frombuffer(data["view"], dtype=dtype).reshape(data["shape"])
