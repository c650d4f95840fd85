"""The table of real conv layers that ``conv-layers`` samples from with ``distribution=real``.

``python -m lenna_torchvision.layer_table`` rewrites ``lenna_conv_layers/real_layers.json``
from the installed torchvision.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lenna_core.api import conv_layers
from lenna_torchvision.models import DEFAULT_MODELS
from lenna_torchvision.source import traced_graph

INPUT_SIZE = 224


def layer_table(models: tuple[str, ...] = DEFAULT_MODELS) -> dict[str, Any]:
    """Each model's conv layers at 224×224 as ``[kernel, filters, in_channels, size, stride,
    groups]``; layers with non-square kernels, maps or strides, or dilation, are left out."""
    table: dict[str, list[list[int]]] = {}
    for model in models:
        rows = []
        for layer in conv_layers(traced_graph(model, INPUT_SIZE, 1.0, 1000)):
            if (isinstance(layer["kernel"], int) and isinstance(layer["stride"], int)
                    and layer["H"] == layer["W"] and layer["dilation"] == 1):
                rows.append([layer["kernel"], layer["filters"], layer["in_channels"],
                             layer["H"], layer["stride"], layer["groups"]])
        table[model] = rows
    return {"input_size": INPUT_SIZE, "models": table}


def write(path: Path) -> None:
    """Write the table as JSON, one model per line."""
    table = layer_table()
    lines = [f'  "{m}": {json.dumps(rows)}' for m, rows in table["models"].items()]
    body = ",\n".join(lines)
    path.write_text(f'{{"input_size": {table["input_size"]}, "models": {{\n{body}\n}}}}\n')


if __name__ == "__main__":
    import lenna_conv_layers

    write(Path(lenna_conv_layers.__file__).parent / "real_layers.json")
