"""The one binary array codec of the synced state: ``{"view": buffer, "dtype": str, "shape": [int]}``.

A binary field (``live_state.Field`` of kind ``"float32"`` or ``"uint8"``) is stored as a contiguous 1-D numpy array
(:func:`as_array`) and put on the wire by :func:`encode`: the Jupyter widget sends the view as a ``memoryview``
(ipywidgets makes it a binary buffer), the Panel host as ``bytes`` (Bokeh makes it an ArrayBuffer). The front end
decodes it once into a typed array (``js/src/codecs.ts``, the mirror of this module).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Binary kinds and their numpy dtypes (``js/src/codecs.ts`` decodes the same names).
ARRAY_KINDS: dict[str, type] = {"float32": np.float32, "uint8": np.uint8}
DTYPES = tuple(ARRAY_KINDS)


def _check(kind: str) -> None:
    if kind not in ARRAY_KINDS:
        raise ValueError(f"dtype must be one of {DTYPES}, got {kind!r}")


def as_array(values: Any, kind: str) -> np.ndarray:
    """``values`` (array-like or a torch tensor, maybe on a GPU) as the contiguous 1-D array of ``kind`` it is stored
    as. ``ValueError`` for an unknown kind; numpy's ``TypeError``/``ValueError`` for values that do not convert."""
    _check(kind)
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.ascontiguousarray(values, dtype=ARRAY_KINDS[kind]).reshape(-1)


def encode(values: Any, kind: str, *, as_bytes: bool = False) -> dict[str, Any]:
    """``values`` on the wire: ``{"view": memoryview (or bytes when ``as_bytes``), "dtype": kind, "shape": [n]}``."""
    arr = as_array(values, kind)
    return {"view": arr.tobytes() if as_bytes else memoryview(arr), "dtype": kind, "shape": [int(arr.size)]}


def decode(data: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode` (a read-only view of the buffer); a ``None`` view is an empty array."""
    kind = data["dtype"]
    _check(kind)
    if data["view"] is None:
        return np.zeros(0, dtype=ARRAY_KINDS[kind])
    return np.frombuffer(data["view"], dtype=ARRAY_KINDS[kind]).reshape(data["shape"])
