"""``bam``: Bottleneck attention module, a channel MLP and a dilated spatial branch combined in one gate."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, Strict

from netspec.layers.base import Attention, Context, Layer, PositiveInt, check_reduction
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

ConvCount = Annotated[int, Strict(), Field(ge=0, le=8)]
Dilation = Annotated[int, Strict(), Field(ge=1, le=64)]  # the padding (= dilation) is a real tensor: bounded


@register
class BAM(Attention):
    """BAM: x * (1 + sigmoid(Mc * Ms)), a channel MLP map Mc times a dilated-conv spatial map Ms.

    Mc: global pool, Linear C->r + BatchNorm1d + ReLU, Linear r->C. Ms: 1x1 C->r, `convs` 3x3 convs of
    dilation `dilation`, and a 1x1 r->1, each conv with bias and all but the last + BN + ReLU.

    r = C // `reduction` (C=256: 17,361 params). `combine: product` is the released code; the paper writes
    a sum, 1 + sigmoid(Mc + Ms) (`combine: sum`). The released channel gate pools with an H x H window,
    which is global only for square maps: netspec pools globally. Its BatchNorm1d needs batches of more than
    one sample in training, as the official code.
    """

    kind = "bam"
    paper = "Park, Woo, Lee, Kweon. BAM: Bottleneck Attention Module. BMVC 2018 (arXiv:1807.06514)"

    reduction: PositiveInt = 16
    """reduction ratio r of both branches: C -> C // r"""
    dilation: Dilation = 4
    """dilation of the spatial branch's 3x3 convs (1-64; padding = dilation keeps the size)"""
    convs: ConvCount = 2
    """number of dilated 3x3 convs in the spatial branch (0-8)"""
    combine: Literal["product", "sum"] = "product"
    """how the two maps meet in the gate: product (released code) or sum (the paper)"""

    def hidden(self, channels: int) -> int:
        return channels // self.reduction

    def check(self, x: Shape, ctx: Context) -> None:
        check_reduction(self.reduction, x, ctx)

    def count(self, channels: int, ctx: Context) -> int:
        r = self.hidden(channels)
        channel_gate = 2 * channels * r + 3 * r + channels  # Linear C->r, BN1d, Linear r->C
        spatial_gate = channels * r + 3 * r + self.convs * (9 * r * r + 3 * r) + r + 1
        return channel_gate + spatial_gate

    def macs_per_sample(self, x: Shape) -> int | None:
        pixels = x.pixels
        if pixels is None:
            return None
        r = self.hidden(x.channels)
        spatial = (x.channels * r + self.convs * 9 * r * r + r) * pixels
        gates = (2 if self.combine == "product" else 1) * x.channels * pixels  # Mc * Ms, x * gate
        return 2 * x.channels * r + spatial + gates

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.bam import BottleneckAttention

        return BottleneckAttention(x.channels, self.hidden(x.channels), convs=self.convs, dilation=self.dilation,
                                   product=self.combine == "product")

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, reduction=st.integers(1, x.channels), dilation=st.integers(1, 4),
                         convs=st.integers(0, 2), combine=st.sampled_from(["product", "sum"]))
