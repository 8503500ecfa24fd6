"""``dropout``: zero elements at random during training."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Layer, Probability
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Dropout(Layer):
    """Dropout with probability `p` (element-wise, any shape; identity in eval mode)."""

    kind = "dropout"

    p: Probability = 0.5

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        return LayerInfo(x)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from torch import nn

        return nn.Dropout(self.p)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, p=st.floats(0.0, 1.0))
