"""The drawing layout of a network: its gate layers in forward order and its residual blocks.

Pure functions of a linearized model (no Jupyter): ``NetworkView`` syncs the result to the front end,
where ``js/src/network_view.ts`` draws one column of units per layer and an arc per skip connection.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from nonlin_explorer.gates import gates
from nonlin_explorer.plumbing import RESIDUAL_MARKERS


def _parent_name(name: str) -> str:
    return name.rpartition(".")[0]


def _residual(module: nn.Module) -> tuple[bool, bool]:
    """(is a residual block, its skip has a projection)."""
    if isinstance(module, nn.TransformerEncoderLayer):
        return True, False
    for attr in RESIDUAL_MARKERS:
        if hasattr(module, attr):
            skip = getattr(module, attr)
            projection = skip is not None and not isinstance(skip, nn.Identity) and any(
                True for _ in skip.parameters())
            return True, projection
    return False, False


def network_layout(model: nn.Module) -> dict[str, list[dict[str, Any]]]:
    """``{"layers": [...], "blocks": [...]}`` for a model with gates.

    Each layer: ``name``, ``units``, ``offset`` (of its first unit in the flat unit arrays), ``block``
    (index into ``blocks``, or -1). Each block: ``name``, ``first`` and ``last`` (layer indices), and
    ``projection`` (its skip has a 1x1 conv / linear map). The skip of a block runs from the layer before
    ``first`` (the network input when ``first`` is 0) to ``last``, the gate after the addition.
    """
    gs = gates(model)
    if not gs:
        raise ValueError("the model has no gates: call nonlin_explorer.linearize(model, example_input) first")
    modules = dict(model.named_modules())
    layers: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    block_of: dict[str, int] = {}
    offset = 0
    for i, g in enumerate(gs):
        parent = _parent_name(g.name)
        block = -1
        module = modules.get(parent) if parent else None
        if module is not None:
            if parent in block_of and blocks[block_of[parent]]["last"] == i - 1:
                block = block_of[parent]
                blocks[block]["last"] = i
            else:
                is_block, projection = _residual(module)
                if is_block:
                    block = len(blocks)
                    block_of[parent] = block
                    blocks.append({"name": parent, "first": i, "last": i, "projection": projection})
        layers.append({"name": g.name, "units": int(g.num_units), "offset": offset, "block": block})
        offset += int(g.num_units)
    return {"layers": layers, "blocks": blocks}
