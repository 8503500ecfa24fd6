"""``dropout``: zero elements at random during training."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Flag, Layer, Probability
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Dropout(Layer):
    """Dropout with probability `p`: element-wise (any shape), or whole channels with `channels` (identity in eval).

    `channels: true` zeroes entire feature maps (``nn.Dropout2d``, Tompson et al. CVPR 2015), as the heads of
    DANet do before their classifiers; it needs a feature map (N, C, H, W).
    """

    kind = "dropout"

    p: Probability = 0.5
    channels: Flag = False
    """drop whole channels of a feature map (``nn.Dropout2d``) instead of single elements (``nn.Dropout``)"""

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if self.channels and x.flat:
            raise ctx.invalid("channels", f"drops whole channels of a feature map (N, C, H, W), got {x}")
        return LayerInfo(x)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from torch import nn

        return nn.Dropout2d(self.p) if self.channels else nn.Dropout(self.p)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, p=st.floats(0.0, 1.0), channels=st.booleans() if x.spatial else st.just(False))
