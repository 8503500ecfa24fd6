"""``linear``: a fully connected layer on a flat (N, C) input."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Flag, Layer, PositiveInt
from netspec.ops import ActName
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Linear(Layer):
    """Fully connected layer (N, C) -> (N, out), then `act`; needs `avgpool` or `flatten` before a feature map.

    `act` (none) follows the layer, as MobileNetV3's classifier: Linear 960->1280, Hardswish, Dropout, Linear.
    """

    kind = "linear"

    out: PositiveInt
    bias: Flag = True
    act: ActName = "none"
    """activation after the layer (not the spec's `defaults.act`: a classifier ends without one)"""

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if not x.flat:
            raise ctx.invalid(None, f"linear needs a flat (N, C) input, got {x}: add `avgpool` or `flatten` before it")
        weights = x.channels * self.out
        return LayerInfo(Shape(self.out, flat=True), weights + (self.out if self.bias else 0), weights)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from torch import nn

        from netspec.modules.conv import LinearAct

        if self.act == "none":
            return nn.Linear(x.channels, self.out, bias=self.bias)
        return LinearAct(x.channels, self.out, bias=self.bias, act=self.act)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.flat

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, out=st.integers(1, 32), bias=st.booleans(),
                         act=st.sampled_from(["none", "none", "relu", "hardswish"]))
