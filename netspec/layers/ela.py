"""``ela``: Efficient Local Attention (timm ``EfficientLocalAttn``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Attention, Context, Flag, Layer, OddInt
from netspec.layers.se import Gate, InnerAct
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class ELA(Attention):
    """Efficient local attention: pool over W and over H, depthwise k x 1 / 1 x k convs (no bias), GroupNorm(1, C)
    + SiLU + sigmoid on each, x * a_h * a_w; no channel reduction. Params 2 C k + 4 C (C k fewer per conv bias)."""

    kind = "ela"
    paper = "Xu, Wan. ELA: Efficient Local Attention for Deep Convolutional Neural Networks. 2024 (arXiv:2403.01123)"

    kernel: OddInt = 7
    """taps of the depthwise strip convs"""
    bias: Flag = False
    """biases in the strip convs"""
    norm: Flag = True
    """GroupNorm(1, C) after each strip conv (timm's GroupNorm1)"""
    act: InnerAct = "silu"
    """the activation before the gate"""
    gate: Gate = "sigmoid"
    """the gate"""

    def count(self, channels: int, ctx: Context) -> int:
        return 2 * channels * self.kernel + (2 * channels if self.bias else 0) + (4 * channels if self.norm else 0)

    def macs_per_sample(self, x: Shape) -> int | None:
        if x.pixels is None or x.height is None or x.width is None:
            return None
        return x.channels * self.kernel * (x.height + x.width) + 2 * x.channels * x.pixels

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.timm_attention import StripGates

        return StripGates(x.channels, kernel=self.kernel, bias=self.bias, separate=True, norm=self.norm, act=self.act,
                          gate=self.gate)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, kernel=st.sampled_from([1, 3, 7]), bias=st.booleans(), norm=st.booleans(),
                         act=st.sampled_from(["relu", "silu"]), gate=st.sampled_from(["sigmoid", "hardsigmoid"]))
