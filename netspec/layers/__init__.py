"""Every built-in layer kind, one module each; importing this package registers them all.

The params models are the same ones YAML validates into, so specs can be written in Python::

    from netspec.layers import Conv, Stage, SE
    Stage(out=256, depth=3, attention=SE(reduction=8))
"""
from __future__ import annotations

import importlib
import pkgutil

from netspec.layers.base import Attention, Context, Layer
from netspec.registry import KINDS

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

globals().update({cls.__name__: cls for cls in KINDS.values() if cls.__module__.startswith(__name__)})
__all__ = ["Attention", "Context", "Layer"] + sorted(
    cls.__name__ for cls in KINDS.values() if cls.__module__.startswith(__name__)
)
