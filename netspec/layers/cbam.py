"""``cbam``: Convolutional Block Attention Module, a channel gate then a spatial gate."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from netspec.layers._timm_rules import timm_divisible
from netspec.layers.base import Attention, Context, Flag, Layer, OddInt, PositiveInt, Probability, check_reduction
from netspec.layers.se import Gate, InnerAct
from netspec.registry import register
from netspec.shapes import Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class CBAM(Attention):
    """CBAM: channel gate (shared MLP C->C/r->C over avg- and max-pool, sigmoid), then spatial gate.

    The spatial gate is a `kernel`x`kernel` conv (no bias) + BatchNorm over [max, mean] across channels, sigmoid.
    `mlp_bias: false` gives timm's variant (its MLP has no biases); `spatial: false` the channel gate alone;
    `gate` and `act` are timm's CbamModule gate_layer (both gates) and act_layer (inside the MLP).
    timm's CbamModule exactly (``timm:cbam``): `{mlp_bias: false, rounding: timm, order: mean_max, momentum: 0.1}`.
    """

    kind = "cbam"
    paper = "Woo, Park, Lee, Kweon. CBAM: Convolutional Block Attention Module. ECCV 2018 (arXiv:1807.06521)"

    reduction: PositiveInt = 16
    """reduction ratio r of the shared MLP: C -> C/r -> C"""
    mlp_bias: Flag = True
    """biases in the shared MLP (official code); false gives timm's CbamModule"""
    kernel: OddInt = 7
    """odd kernel size of the spatial gate's conv over [max, mean]"""
    spatial: Flag = True
    """apply the spatial gate after the channel gate; false leaves the channel gate alone"""
    gate: Gate = "sigmoid"
    """the squashing of both gates: sigmoid (paper), or hardsigmoid (timm's gate_layer)"""
    act: InnerAct = "relu"
    """the activation inside the shared MLP: relu (paper), or silu (timm's act_layer)"""
    rounding: Literal["floor", "timm"] = "floor"
    """hidden width: floor(C / r) (official code), or timm's round(C / r) (make_divisible(C/r, 1)); at least 1"""
    order: Literal["max_mean", "mean_max"] = "max_mean"
    """the spatial conv's two input maps: [max, mean] across channels (official code), or [mean, max] (timm)"""
    momentum: Probability = 0.01
    """the spatial gate's BatchNorm momentum: 0.01 (official BasicConv), 0.1 (timm's ConvNormAct, torch's default)"""

    def hidden(self, channels: int) -> int:
        if self.rounding == "timm":
            return timm_divisible(channels / self.reduction, 1, round_limit=0.0)
        return max(channels // self.reduction, 1)

    def check(self, x: Shape, ctx: Context) -> None:
        check_reduction(self.reduction, x, ctx)

    def count(self, channels: int, ctx: Context) -> int:
        hidden = self.hidden(channels)
        mlp = 2 * channels * hidden + (hidden + channels if self.mlp_bias else 0)
        spatial = 2 * self.kernel * self.kernel + 2 if self.spatial else 0  # conv 2->1 without bias, BN(1)
        return mlp + spatial

    def macs_per_sample(self, x: Shape) -> int | None:
        pixels = x.pixels
        if pixels is None:
            return None
        mlp = 2 * (2 * x.channels * self.hidden(x.channels))  # the MLP runs on both pooled vectors
        channel_gate = scale_macs(x.channels, x) or 0
        spatial = (2 * self.kernel * self.kernel + x.channels) * pixels if self.spatial else 0
        return mlp + channel_gate + spatial

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.cbam import CBAM as CBAMModule

        return CBAMModule(x.channels, self.hidden(x.channels), mlp_bias=self.mlp_bias, kernel=self.kernel,
                          spatial=self.spatial, gate=self.gate, act=self.act, order=self.order,
                          momentum=self.momentum)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(
            cls,
            reduction=st.integers(1, x.channels),
            mlp_bias=st.booleans(),
            kernel=st.sampled_from([1, 3, 7]),
            spatial=st.booleans(),
            gate=st.sampled_from(["sigmoid", "hardsigmoid"]),
            act=st.sampled_from(["relu", "silu"]),
            rounding=st.sampled_from(["floor", "timm"]),
            order=st.sampled_from(["max_mean", "mean_max"]),
            momentum=st.sampled_from([0.01, 0.1]),
        )
