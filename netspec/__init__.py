"""netspec: declarative YAML specs for CNNs with attention blocks, compiled to ``torch.nn.Sequential``.

``netspec check`` and :func:`summary` never import torch; :func:`build` does.

This file only gathers the public names: every function modules inside netspec also call lives in a submodule
(:mod:`netspec.api`, :mod:`netspec.spec`, :mod:`netspec.weights`...), so none of them imports the package root.
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
from netspec.spec import Defaults, Input, Spec, SpecLike, load, loads
from netspec.summary import Summary, summarize
from netspec.weights import WeightsError, WeightsReport, load_model, load_weights, save
from netspec.importers.modules import ConversionError, from_module
from netspec.hub import from_pretrained, save_pretrained
from netspec.version import __version__
from netspec.api import build, check, summary  # after netspec.summary (the module): `netspec.summary` is the function

if TYPE_CHECKING:
    from torch import nn


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


__all__ = [
    "Attention", "ConversionError", "Context", "Defaults", "Input", "KINDS", "Layer", "LayerInfo", "PluginWarning",
    "Problem", "Scale", "Shape", "Spec", "SpecError", "SpecWarning", "Summary", "WeightsError", "WeightsReport", "build",
    "check", "from_module", "from_pretrained", "from_ultralytics", "fuse", "layers", "load", "load_model",
    "load_weights", "loads", "register", "save", "save_pretrained", "summary", "unregister",
]

enable_plugins()  # last: installed plugins load at the first registry read, once `netspec` is importable
