"""``strip``: timm's minimal strip attention (``StripAttn``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Attention, Context, Flag, Layer, OddInt
from netspec.layers.se import Gate
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Strip(Attention):
    """Strip attention: pool over W and over H, depthwise k x 1 / 1 x k convs (no bias), x * sigmoid(h + w)
    broadcast over the map. A timm module (strip pooling after Hou et al., CVPR 2020). Params 2 C k."""

    kind = "strip"
    paper = "Hou, Zhang, Cheng, Feng. Strip Pooling: Rethinking Spatial Pooling for Scene Parsing. CVPR 2020 (arXiv:2003.13328)"

    kernel: OddInt = 3
    """taps of the depthwise strip convs"""
    bias: Flag = False
    """biases in the strip convs"""
    gate: Gate = "sigmoid"
    """the gate"""

    def count(self, channels: int, ctx: Context) -> int:
        return 2 * channels * self.kernel + (2 * channels if self.bias else 0)

    def macs_per_sample(self, x: Shape) -> int | None:
        if x.pixels is None or x.height is None or x.width is None:
            return None
        return x.channels * self.kernel * (x.height + x.width) + x.channels * x.pixels

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.timm_attention import StripGates

        return StripGates(x.channels, kernel=self.kernel, bias=self.bias, separate=False, gate=self.gate)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, kernel=st.sampled_from([1, 3, 5]), bias=st.booleans(),
                         gate=st.sampled_from(["sigmoid", "hardsigmoid"]))
