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


DEFAULT_MAX_PARAMS = 1_000_000_000
"""Default limit on a network's parameters (4 GB of float32 weights; ResNet-50 has 25.6 million)."""
DEFAULT_MAX_MODULES = 1_000_000
"""Default limit on the torch modules a build creates (ResNet-152 has about 500): building a million takes ~30 s."""
DEFAULT_MAX_ACTIVATIONS = 2**31 - 1
"""Default limit on the values one layer outputs per sample (C*H*W): past it int32 indexing fails in torch kernels."""


@dataclass(frozen=True)
class Budget:
    """Limits checked on the static summary, layer by layer, before any tensor is allocated.

    ``max_params`` bounds the network's total parameters, ``max_activations`` the values any single
    top-level layer outputs per sample (known only when ``input.size`` is given); ``None`` means no limit.
    A spec over a limit is a :class:`~netspec.SpecError` located at the first layer that crosses it.
    """

    max_params: int | None = DEFAULT_MAX_PARAMS
    max_activations: int | None = DEFAULT_MAX_ACTIVATIONS
    max_modules: int | None = DEFAULT_MAX_MODULES

    def check(self, path: tuple[str | int, ...], params: int, output: Shape) -> Finding | None:
        """A finding at ``path`` if ``params`` (the total so far) or ``output`` is over a limit."""
        if self.max_params is not None and params > self.max_params:
            return Finding(path, f"the network reaches {params:,} parameters here, over the limit of "
                                 f"{self.max_params:,} (max_params; --max-params on the command line)", on_key=True)
        values = None if output.pixels is None else output.channels * output.pixels
        if self.max_activations is not None and values is not None and values > self.max_activations:
            return Finding(path, f"this layer outputs {values:,} values per sample {output}, over the limit of "
                                 f"{self.max_activations:,} (max_activations; --max-activations on the command line)",
                           on_key=True)
        return None


NO_LIMITS = Budget(max_params=None, max_activations=None, max_modules=None)


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


def analyse(spec: "Spec", budget: Budget = NO_LIMITS) -> list[Row]:
    """Infer every layer's output shape, parameters and MACs statically; raise ``SpecError`` with all problems.

    Stops at the first layer that takes the network over ``budget`` (a problem located at that layer).
    """
    root = context(spec)
    shape = input_shape(spec)
    rows: list[Row] = []
    params = modules = 0
    if budget.max_activations is not None and shape.pixels is not None and shape.channels * shape.pixels > budget.max_activations:
        root.findings.append(Finding(("input",), f"the input alone holds {shape.channels * shape.pixels:,} values per "
                                     f"sample {shape}, over the limit of {budget.max_activations:,} (max_activations)"))
    for index, (name, layer) in enumerate(zip(layer_names(spec), spec.scaled_layers()) if not root.findings else ()):
        try:
            info = layer.checked_infer(shape, root.at("layers", index, layer.kind))
        except Invalid as problem:
            root.findings.append(Finding(problem.path, problem.message))
            break
        rows.append(Row(name, layer, shape, info))
        shape = info.shape
        params += info.params
        modules += layer.build_units()
        if budget.max_modules is not None and modules > budget.max_modules:
            root.findings.append(Finding(("layers", index, layer.kind), f"building the network takes about {modules:,} "
                                         f"torch modules here, over the limit of {budget.max_modules:,} (max_modules)",
                                         on_key=True))
            break
        over = budget.check(("layers", index, layer.kind), params, shape)
        if over is not None:
            root.findings.append(over)
            break
    if root.findings:
        raise spec.locate(list(dict.fromkeys(root.findings)))  # a rule broken by several convs of a block: once
    return rows


def build_model(spec: "Spec", budget: Budget = Budget()) -> "nn.Sequential":
    """Build the ``torch.nn.Sequential`` of a spec, validated statically (``budget`` included) first."""
    from collections import OrderedDict

    from torch import nn

    from netspec.ops import set_norm_statistics

    rows = analyse(spec, budget)
    root = context(spec)
    try:
        modules = OrderedDict(
            (row.name, row.layer.checked_build(row.input, root.at("layers", index, row.kind))) for index, row in enumerate(rows)
        )
    except Invalid as problem:  # a plugin kind's module that fails or disagrees with its shape rule
        raise spec.locate([Finding(problem.path, problem.message)]) from None
    model = nn.Sequential(modules)
    set_norm_statistics(model, eps=spec.defaults.eps, momentum=spec.defaults.momentum)
    return model
