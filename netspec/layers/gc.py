"""``gc``: Global context block (GCNet), attention pooling to one context vector, transformed and fused."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from netspec.layers.base import Attention, Context, Layer, PositiveInt, check_reduction
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class GC(Attention):
    """Global context block: softmax attention pooling to one context vector, a bottleneck transform, channel add.

    Context = sum over positions of softmax(1x1 C->1) * x; transform 1x1 C->P + LayerNorm + ReLU + 1x1 P->C;
    fused by channel add (official default), channel mul (x * sigmoid) or both.

    P = int(C / `reduction`) (C=256: 8,753 params). The last conv of each transform starts at zero, as the
    official init, so the block starts as the identity. timm's `gca` is `{fusion: mul, reduction: 8}`
    (timm's `GlobalContext` also rounds C/8 to the nearest integer).
    """

    kind = "gc"
    paper = ("Cao, Xu, Lin, Wei, Hu. GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond. "
             "ICCVW 2019 (arXiv:1904.11492)")

    reduction: PositiveInt = 16
    """reduction ratio r of the transform: P = int(C / r)"""
    pool: Literal["attention", "avg"] = "attention"
    """context modelling: softmax attention pooling (official `att`) or global average pooling (`avg`)"""
    fusion: Literal["add", "mul", "both"] = "add"
    """fusion: channel add (official default), channel mul (x * sigmoid, timm's gca), or both (mul, then add)"""

    def hidden(self, channels: int) -> int:
        return channels // self.reduction

    def transforms(self) -> int:
        return 2 if self.fusion == "both" else 1

    def check(self, x: Shape, ctx: Context) -> None:
        check_reduction(self.reduction, x, ctx)

    def count(self, channels: int, ctx: Context) -> int:
        hidden = self.hidden(channels)
        mask = channels + 1 if self.pool == "attention" else 0
        return mask + self.transforms() * (2 * channels * hidden + 3 * hidden + channels)

    def macs_per_sample(self, x: Shape) -> int | None:
        pixels = x.pixels
        if pixels is None:
            return None
        pooling = 2 * x.channels * pixels if self.pool == "attention" else 0  # 1x1 C->1, then (C, HW) @ (HW, 1)
        gate = x.channels * pixels if self.fusion != "add" else 0
        return pooling + self.transforms() * 2 * x.channels * self.hidden(x.channels) + gate

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.gc import GlobalContext

        return GlobalContext(x.channels, self.hidden(x.channels), attention_pool=self.pool == "attention",
                             add=self.fusion != "mul", mul=self.fusion != "add")

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, reduction=st.integers(1, x.channels), pool=st.sampled_from(["attention", "avg"]),
                         fusion=st.sampled_from(["add", "mul", "both"]))
