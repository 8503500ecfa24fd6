"""``flatten``: (N, C, H, W) -> (N, C*H*W)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Layer
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Flatten(Layer):
    """Flatten a feature map to (N, C*H*W); needs `input.size` so that H and W are known."""

    kind = "flatten"

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if x.flat:
            return LayerInfo(x)
        if x.pixels is None:
            raise ctx.invalid(None, "flatten needs the map size: give `input.size`, or use `avgpool` instead")
        return LayerInfo(Shape(x.channels * x.pixels, flat=True))

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from torch import nn

        return nn.Flatten(1)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.sized and (x.pixels or 0) * x.channels <= 4096

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.just(cls())
