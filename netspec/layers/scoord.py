"""``scoord``: timm's simple coordinate attention (``SimpleCoordAttn``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, Strict

from netspec.layers._timm_rules import timm_divisible
from netspec.layers.base import Attention, Context, Flag, Layer, PositiveInt
from netspec.layers.se import Gate, InnerAct
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

Ratio = Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)]


@register
class SCoord(Attention):
    """Simple coordinate attention: pool over W and over H, a shared Linear C->rd + SiLU, Linear rd->C for each
    direction, x * sigmoid(a_h + a_w) (additive before the gate; no norm).

    rd = make_divisible(C x `ratio` x 2/3, 8) (timm's rounding, never down by more than it rounds). A timm
    variant of Coordinate Attention. Params C rd + rd + 2 (rd C + C).
    """

    kind = "scoord"
    paper = ("Hou, Zhou, Feng. Coordinate Attention for Efficient Mobile Network Design. CVPR 2021 "
             "(arXiv:2103.02907); simplified variant from timm")

    ratio: Ratio = 0.25
    """hidden width rd = make_divisible(C x ratio x 2/3, divisor) (timm's rd_ratio x se_factor)"""
    divisor: PositiveInt = 8
    """rd rounds to a multiple of it"""
    bias: Flag = True
    """biases in the three Linears"""
    act: InnerAct = "silu"
    """the activation after the shared Linear"""
    gate: Gate = "sigmoid"
    """the gate"""

    def hidden(self, channels: int) -> int:
        return timm_divisible(channels * self.ratio * 2 / 3, self.divisor, round_limit=0.0)

    def count(self, channels: int, ctx: Context) -> int:
        hidden = self.hidden(channels)
        return 3 * channels * hidden + ((hidden + 2 * channels) if self.bias else 0)

    def macs_per_sample(self, x: Shape) -> int | None:
        if x.pixels is None or x.height is None or x.width is None:
            return None
        return 2 * (x.height + x.width) * x.channels * self.hidden(x.channels) + x.channels * x.pixels

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.timm_attention import SimpleCoord

        return SimpleCoord(x.channels, self.hidden(x.channels), bias=self.bias, act=self.act, gate=self.gate)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, ratio=st.sampled_from([0.0625, 0.25, 1.0]), divisor=st.sampled_from([1, 8]),
                         bias=st.booleans(), act=st.sampled_from(["relu", "silu"]),
                         gate=st.sampled_from(["sigmoid", "hardsigmoid"]))
