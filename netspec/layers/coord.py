"""``coord``: Coordinate attention, direction-aware gates from pooling along H and along W."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from netspec.layers._timm_rules import timm_divisible
from netspec.layers.base import Attention, Context, Flag, Layer, PositiveInt
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Coord(Attention):
    """Coordinate attention: pool over W and over H, concat, 1x1 C->mip + BN + h-swish, split, 1x1 mip->C + sigmoid.

    Output x * a_w * a_h; mip = max(`min_hidden`, C // `reduction`) with bias, as the official CoordAtt
    (C=64: 1,688 params). timm's CoordAttn (``timm:coord``) is `{reduction: 16, bias: false, rounding: timm}`:
    no biases, mip = make_divisible(C / 16 x 2/3, 8) (C=64: 1,552).
    """

    kind = "coord"
    paper = "Hou, Zhou, Feng. Coordinate Attention for Efficient Mobile Network Design. CVPR 2021 (arXiv:2103.02907)"

    reduction: PositiveInt = 32
    """reduction ratio r: mip = max(min_hidden, C // r) (any r: the floor keeps mip >= 1, as on 16 channels)"""
    min_hidden: PositiveInt = 8
    """least width mip of the shared 1x1 conv"""
    bias: Flag = True
    """biases in the three 1x1 convs (official code); false as timm's CoordAttn"""

    rounding: Literal["floor", "timm"] = "floor"
    """mip = max(min_hidden, C // r) (official code), or timm's make_divisible(C / r x 2/3, min_hidden): the nearest
    multiple of `min_hidden`, at least `min_hidden` (its se_factor 2/3 keeps the parameters near an SE block's)"""

    def hidden(self, channels: int) -> int:
        if self.rounding == "timm":
            return timm_divisible(channels / self.reduction * 2 / 3, self.min_hidden, round_limit=0.0)
        return max(self.min_hidden, channels // self.reduction)

    def count(self, channels: int, ctx: Context) -> int:
        mip = self.hidden(channels)
        biases = mip + 2 * channels if self.bias else 0
        return 3 * channels * mip + 2 * mip + biases  # three 1x1 convs, BN(mip)

    def macs_per_sample(self, x: Shape) -> int | None:
        if x.pixels is None:
            return None
        mip = self.hidden(x.channels)
        assert x.height is not None and x.width is not None
        return 2 * x.channels * mip * (x.height + x.width) + 2 * x.channels * x.pixels  # convs; x * a_w * a_h

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.coord import CoordinateAttention

        return CoordinateAttention(x.channels, self.hidden(x.channels), bias=self.bias)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, reduction=st.integers(1, 64), min_hidden=st.integers(1, 16), bias=st.booleans(),
                         rounding=st.sampled_from(["floor", "timm"]))
