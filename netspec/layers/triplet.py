"""``triplet``: Triplet attention, three Z-pool gates over the (C, W), (H, C) and (H, W) planes, averaged."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Attention, Context, Flag, Layer, OddInt
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Triplet(Attention):
    """Triplet attention: Z-pool + conv + BN gates over the (C, W), (H, C) and (H, W) planes, averaged.

    Rotate so that H (then W) plays the channels, Z-pool [max, mean] over it, `kernel`x`kernel` conv (no bias)
    + BN, sigmoid gate, rotate back; the third branch is the plain (H, W) gate; the mean of the three.

    300 params at any C (`kernel` 7). The (H, W) branch's BN weight starts at 0, as the official ResNet's init;
    `spatial: false` drops that branch (the official `no_spatial`).
    """

    kind = "triplet"
    paper = ("Misra, Nalamada, Arasanipalai, Hou. Rotate to Attend: Convolutional Triplet Attention Module. "
             "WACV 2021 (arXiv:2010.03045)")

    kernel: OddInt = 7
    """odd kernel size of each branch's conv over [max, mean]"""
    spatial: Flag = True
    """keep the plain (H, W) branch (official default); false is the official no_spatial"""

    def branches(self) -> int:
        return 3 if self.spatial else 2

    def count(self, channels: int, ctx: Context) -> int:
        return self.branches() * (2 * self.kernel * self.kernel + 2)  # conv 2->1 without bias, BN(1)

    def macs_per_sample(self, x: Shape) -> int | None:
        pixels = x.pixels
        if pixels is None:
            return None
        assert x.height is not None and x.width is not None
        planes = x.channels * x.width + x.height * x.channels + (pixels if self.spatial else 0)
        return 2 * self.kernel * self.kernel * planes + self.branches() * x.channels * pixels  # convs, gates

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.triplet import TripletAttention

        return TripletAttention(kernel=self.kernel, spatial=self.spatial)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, kernel=st.sampled_from([1, 3, 7]), spatial=st.booleans())
