"""netspec: declarative YAML specs for CNNs with attention blocks, compiled to ``torch.nn.Sequential``.

``netspec check`` and :func:`summary` never import torch; :func:`build` does.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from netspec import layers
from netspec.compiler import DEFAULT_MAX_ACTIVATIONS, DEFAULT_MAX_PARAMS, Budget
from netspec.errors import Problem, SpecError, SpecWarning
from netspec.layers.base import Attention, Context, Layer
from netspec.registry import KINDS, PluginWarning, enable_plugins, register, unregister
from netspec.scaling import Scale
from netspec.shapes import LayerInfo, Shape
from netspec.spec import Defaults, Input, Spec, load, loads
from netspec.summary import Summary, summarize
from netspec.weights import WeightsError, WeightsReport, load_model, load_weights, save
from netspec.importers.modules import ConversionError, from_module
from netspec.hub import from_pretrained, save_pretrained

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from torch import nn

__version__ = "0.1.0"

SpecLike = Spec | str | os.PathLike[str]


def _as_spec(spec: SpecLike) -> Spec:
    return spec if isinstance(spec, Spec) else load(spec)


def check(
    spec: SpecLike, *, max_params: int | None = DEFAULT_MAX_PARAMS, max_activations: int | None = DEFAULT_MAX_ACTIVATIONS
) -> Summary:
    """Validate a spec and infer every shape without building anything; raises :class:`SpecError`.

    Like :func:`build`, it rejects a spec over ``max_params`` parameters in all or ``max_activations``
    values output by one layer per sample (``None``: no limit), at the layer that crosses the limit.
    """
    return summarize(_as_spec(spec), Budget(max_params, max_activations))


def summary(spec: SpecLike, *, max_params: int | None = None, max_activations: int | None = None) -> Summary:
    """Per-layer output shape, parameters and MACs, computed statically; ``str()`` prints the table.

    No limits by default (nothing is allocated); give ``max_params``/``max_activations`` to enforce some.
    """
    return summarize(_as_spec(spec), Budget(max_params, max_activations, max_modules=None))


def from_ultralytics(path_or_text: str | os.PathLike[str], scale: str | None = None) -> Spec:
    """The spec of an Ultralytics model YAML (``yolov8.yaml``, ``yolo11.yaml``, a user's edit), as a file path or
    text: rows ``[from, repeats, module, args]`` become entries that read names; ``scale`` picks a row of its
    ``scales`` (default as Ultralytics: the letter in the file name, else the first). ``netspec import`` writes the
    same spec as YAML with the file's comments. Raises :class:`SpecError` located in the file."""
    from netspec.importers.ultralytics import from_ultralytics as convert

    return convert(path_or_text, scale=scale)


def fuse(model: "nn.Module") -> "nn.Module":
    """Fold every batch norm that follows a convolution into it, in place, and return ``model`` (for inference:
    the same eval-mode function; as Ultralytics' ``model.fuse()``). Any module, ``GraphModule`` included."""
    from netspec.fusion import fuse as fuse_model

    return fuse_model(model)


def build(
    spec: SpecLike, *, max_params: int | None = DEFAULT_MAX_PARAMS, max_activations: int | None = DEFAULT_MAX_ACTIVATIONS,
    seed: int | None = None, overrides: "Mapping[str, Any] | None" = None,
) -> "nn.Module":
    """Build the ``torch.nn.Sequential`` of a spec (a :class:`Spec` or a YAML file path); a graph spec (``name``,
    ``from``, ``outputs``) gives a ``torch.fx.GraphModule`` whose children are named after the entries.

    The static summary is checked against ``max_params`` (the network's parameters; default one billion)
    and ``max_activations`` (values one layer outputs per sample; default 2**31 - 1) before any module
    is built; a spec over a limit raises :class:`SpecError` at the layer that crosses it. ``None``: no limit.
    ``seed`` makes the initial weights reproducible (``torch.manual_seed``; the global generator is left as it was).
    The model remembers its spec, for :func:`save`. ``overrides`` changes the spec by dotted paths first
    (``{"linear.out": 10, "scale.width": 0.5, "stage3.depth": 2}``; :mod:`netspec.overrides`), so a sweep or a Hydra
    config (``_target_: netspec.build``) varies one file without copying it.
    """
    import torch

    from netspec.compiler import build_model
    from netspec.weights import remember_spec

    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 2**64):
        raise ValueError(f"seed must be a whole number from 0 to 2**64-1, got {seed!r}")
    spec = _as_spec(spec)
    if overrides:
        from netspec.overrides import apply_overrides

        spec = apply_overrides(spec, overrides)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = build_model(spec, Budget(max_params, max_activations))
    remember_spec(model, spec)
    return model


__all__ = [
    "Attention", "ConversionError", "Context", "Defaults", "Input", "KINDS", "Layer", "LayerInfo", "PluginWarning",
    "Problem", "Scale", "Shape", "Spec", "SpecError", "SpecWarning", "Summary", "WeightsError", "WeightsReport", "build",
    "check", "from_module", "from_pretrained", "from_ultralytics", "fuse", "layers", "load", "load_model",
    "load_weights", "loads", "register", "save", "save_pretrained", "summary", "unregister",
]

enable_plugins()  # last: installed plugins load at the first registry read, once `netspec` is importable
