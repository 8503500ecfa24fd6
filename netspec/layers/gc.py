"""``gc``: Global context block (GCNet), attention pooling to one context vector, transformed and fused."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, Strict

from netspec.layers._timm_rules import timm_divisible
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
    official init, so the block starts as the identity. timm's GlobalContext exactly (``timm:gc``) is
    `{reduction: 8, fusion: mul, rounding: timm, eps: 1.0e-6, layout: timm}`; ``timm:gca`` the same with `fusion: add`.
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

    rounding: Literal["floor", "timm"] = "floor"
    """P = int(C / r) (official code), or timm's round(C / r) (make_divisible(C/r, 1): nearest, at least 1)"""
    eps: Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)] = 1e-5
    """the LayerNorm's epsilon: 1e-5 (official, torch's default), 1e-6 (timm's LayerNorm2d)"""
    layout: Literal["official", "timm"] = "official"
    """the LayerNorm's weights: shaped (P, 1, 1) as the official nn.LayerNorm([P, 1, 1]), or (P,) as timm's
    LayerNorm2d (the same function; the layout lets checkpoints of either load)"""

    def hidden(self, channels: int) -> int:
        if self.rounding == "timm":
            return timm_divisible(channels / self.reduction, 1, round_limit=0.0)
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
                             add=self.fusion != "mul", mul=self.fusion != "add", eps=self.eps,
                             channel_norm=self.layout == "timm")

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, reduction=st.integers(1, x.channels), pool=st.sampled_from(["attention", "avg"]),
                         fusion=st.sampled_from(["add", "mul", "both"]), rounding=st.sampled_from(["floor", "timm"]),
                         eps=st.sampled_from([1e-5, 1e-6]), layout=st.sampled_from(["official", "timm"]))
