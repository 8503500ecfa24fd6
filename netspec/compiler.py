"""The compiler: one loop over the layers, asking each kind (via the registry's models) for its shape rule or builder."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netspec.errors import Finding, Invalid
from netspec.layers.base import Context, Layer
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from torch import nn

    from netspec.spec import Spec


@dataclass(frozen=True)
class Row:
    """One top-level layer after static inference."""

    name: str
    layer: Layer
    input: Shape
    info: LayerInfo

    @property
    def kind(self) -> str:
        return self.layer.kind


def input_shape(spec: "Spec") -> Shape:
    size = spec.input.size
    return Shape(spec.input.channels, *(size if size is not None else (None, None)))


def context(spec: "Spec") -> Context:
    return Context(norm=spec.defaults.norm, act=spec.defaults.act)


def layer_names(spec: "Spec") -> list[str]:
    """Readable child names: the kind and its running count (``conv1``, ``stage1`` ... ``stage4``)."""
    seen: Counter[str] = Counter()
    names = []
    for layer in spec.layers:
        seen[layer.kind] += 1
        names.append(f"{layer.kind}{seen[layer.kind]}")
    return names


def analyse(spec: "Spec") -> list[Row]:
    """Infer every layer's output shape, parameters and MACs statically; raise ``SpecError`` with all problems."""
    root = context(spec)
    shape = input_shape(spec)
    rows: list[Row] = []
    for index, (name, layer) in enumerate(zip(layer_names(spec), spec.scaled_layers())):
        try:
            info = layer.infer(shape, root.at("layers", index, layer.kind))
        except Invalid as problem:
            root.findings.append(Finding(problem.path, problem.message))
            break
        rows.append(Row(name, layer, shape, info))
        shape = info.shape
    if root.findings:
        raise spec.locate(root.findings)
    return rows


def build_model(spec: "Spec") -> "nn.Sequential":
    """Build the ``torch.nn.Sequential`` of a spec (validated statically first)."""
    from collections import OrderedDict

    from torch import nn

    rows = analyse(spec)
    root = context(spec)
    modules = OrderedDict(
        (row.name, row.layer.build(row.input, root.at("layers", index, row.kind))) for index, row in enumerate(rows)
    )
    return nn.Sequential(modules)
