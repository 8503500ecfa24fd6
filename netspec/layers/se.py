"""``se``: Squeeze-and-Excitation channel attention."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Attention, Context, Layer, PositiveInt, check_reduction
from netspec.registry import register
from netspec.shapes import Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class SE(Attention):
    """Squeeze-and-Excitation: global pool, FC C->C/r + ReLU, FC C/r->C + sigmoid, channel gate."""

    kind = "se"
    paper = "Hu, Shen, Sun. Squeeze-and-Excitation Networks. CVPR 2018 (arXiv:1709.01507)"

    reduction: PositiveInt = 16

    def hidden(self, channels: int) -> int:
        return max(channels // self.reduction, 1)

    def check(self, x: Shape, ctx: Context) -> None:
        check_reduction(self.reduction, x, ctx)

    def count(self, channels: int, ctx: Context) -> int:
        hidden = self.hidden(channels)
        return 2 * channels * hidden + hidden + channels

    def macs_per_sample(self, x: Shape) -> int | None:
        gating = scale_macs(x.channels, x)
        return None if gating is None else 2 * x.channels * self.hidden(x.channels) + gating

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.se import SqueezeExcite

        return SqueezeExcite(x.channels, self.hidden(x.channels))

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, reduction=st.integers(1, x.channels))
