"""``lcbam``: timm's light CBAM (``LightCbamModule``): each gate pools once, 0.5 mean + 0.5 max."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers._timm_rules import timm_divisible
from netspec.layers.base import Attention, Context, Flag, Layer, OddInt, PositiveInt
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class LCBAM(Attention):
    """Light CBAM: channel gate sigmoid(MLP(0.5 avg + 0.5 max)), then spatial gate sigmoid(BN(conv kxk over
    0.5 mean + 0.5 max across channels)).

    MLP: 1x1 C->rd + ReLU, 1x1 rd->C, no biases; rd = round(C / `reduction`) (at least 1, timm's rounding);
    spatial conv 1->1 without bias + BN. A timm experiment, not in the CBAM paper. Params 2 C rd + k^2 + 2.
    """

    kind = "lcbam"
    paper = ("Woo, Park, Lee, Kweon. CBAM: Convolutional Block Attention Module. ECCV 2018 (arXiv:1807.06521); "
             "light variant from timm")

    reduction: PositiveInt = 16
    """rd = round(C / reduction) hidden channels of the MLP"""
    kernel: OddInt = 7
    """the spatial conv's kernel"""
    mlp_bias: Flag = False
    """biases in the MLP (timm: none)"""

    def hidden(self, channels: int) -> int:
        return timm_divisible(channels / self.reduction, 1, round_limit=0.0)

    def count(self, channels: int, ctx: Context) -> int:
        hidden = self.hidden(channels)
        return 2 * channels * hidden + ((hidden + channels) if self.mlp_bias else 0) + self.kernel ** 2 + 2

    def macs_per_sample(self, x: Shape) -> int | None:
        if x.pixels is None:
            return None
        return 2 * x.channels * self.hidden(x.channels) + 2 * x.channels * x.pixels + self.kernel ** 2 * x.pixels

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.timm_attention import LightCbam

        return LightCbam(x.channels, self.hidden(x.channels), kernel=self.kernel, bias=self.mlp_bias)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, reduction=st.integers(1, 32), kernel=st.sampled_from([1, 3, 7]),
                         mlp_bias=st.booleans())
