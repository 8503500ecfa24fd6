"""netspec: declarative YAML specs for CNNs with attention blocks, compiled to ``torch.nn.Sequential``.

``netspec check`` and :func:`summary` never import torch; :func:`build` does.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from netspec import layers
from netspec.errors import Problem, SpecError
from netspec.layers.base import Attention, Context, Layer
from netspec.registry import KINDS, PluginWarning, enable_plugins, register, unregister
from netspec.scaling import Scale
from netspec.shapes import LayerInfo, Shape
from netspec.spec import Defaults, Input, Spec, load, loads
from netspec.summary import Summary, summarize

if TYPE_CHECKING:
    from torch import nn

__version__ = "0.1.0"

SpecLike = Spec | str | os.PathLike[str]


def _as_spec(spec: SpecLike) -> Spec:
    return spec if isinstance(spec, Spec) else load(spec)


def check(spec: SpecLike) -> Summary:
    """Validate a spec and infer every shape without building anything; raises :class:`SpecError`."""
    return summarize(_as_spec(spec))


def summary(spec: SpecLike) -> Summary:
    """Per-layer output shape, parameters and MACs, computed statically; ``str()`` prints the table."""
    return summarize(_as_spec(spec))


def build(spec: SpecLike) -> "nn.Sequential":
    """Build the ``torch.nn.Sequential`` of a spec (a :class:`Spec` or a YAML file path)."""
    from netspec.compiler import build_model

    return build_model(_as_spec(spec))


__all__ = [
    "Attention", "Context", "Defaults", "Input", "KINDS", "Layer", "LayerInfo", "PluginWarning", "Problem", "Scale",
    "Shape", "Spec", "SpecError", "Summary", "build", "check", "layers", "load", "loads", "register", "summary",
    "unregister",
]

enable_plugins()  # last: installed plugins load at the first registry read, once `netspec` is importable
