"""``splat``: Split attention (ResNeSt), a softmax over `radix` splits of a grouped 3x3 conv."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, Strict

from netspec.layers._timm_rules import reduced_width
from netspec.layers.base import AttentionConv, Context, Flag, Layer, PositiveInt
from netspec.registry import register
from netspec.shapes import Shape, add_macs, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

Radix = Annotated[int, Strict(), Field(ge=1, le=8)]


@register
class Splat(AttentionConv):
    """Split attention: a grouped 3x3 conv split into `radix` parts, weighted by a softmax over the radix.

    3x3 conv to radix*C with groups radix*`groups` + BN + ReLU, the radix splits summed and pooled, fc1
    C->inter (bias) + BN + ReLU, fc2 inter->radix*C (bias), rSoftMax over the radix within each cardinal
    group (sigmoid at radix 1), weighted sum of the splits.

    inter = max(C_in * radix // `reduction`, `min_hidden`), as the official SplAtConv2d. Standalone it keeps
    (N, C, H, W); as a stage's `conv` it replaces the bottleneck's 3x3 conv (ResNeSt). Its norms are BatchNorm
    as the official code, whatever the spec's defaults. timm's ResNeSt rounds inter to a multiple of 8 (the
    same at every ResNeSt-50 width: `rounding: timm`); timm's SplitAttn as an attn_layer (``timm:splat``) has no
    norms: `{rounding: timm, norm: false}`.
    """

    kind = "splat"
    paper = "Zhang et al. ResNeSt: Split-Attention Networks. CVPRW 2022 (arXiv:2004.08955)"

    radix: Radix = 2
    """number of splits R (1-8); R = 1 gates with a sigmoid as SE does"""
    groups: PositiveInt = 1
    """cardinality K: the conv has K*R groups, fc1 and fc2 K groups"""
    reduction: PositiveInt = 4
    """reduction factor of fc1: inter = max(C_in * R // reduction, min_hidden)"""
    min_hidden: PositiveInt = 32
    """least width inter of fc1"""
    rounding: Literal["floor", "timm"] = "floor"
    """inter = max(C_in * R // reduction, min_hidden) (official), or timm's make_divisible(C_in * R / reduction, 8,
    min_value=min_hidden): the nearest multiple of 8, at least min_hidden, one more 8 when rounding lost over 10%"""
    norm: Flag = True
    """BatchNorm after the conv and after fc1 (official; timm's ResNeSt); false: none (timm's SplitAttn alone)"""

    def hidden(self, in_channels: int) -> int:
        return reduced_width(in_channels * self.radix, self.reduction, self.min_hidden, self.rounding, divisor=8)

    def check_channels(self, in_channels: int, out_channels: int, ctx: Context) -> None:
        groups = self.groups * self.radix
        if in_channels % groups or out_channels % self.groups or self.hidden(in_channels) % self.groups:
            ctx.error("groups", f"groups * radix ({groups}) must divide the input channels ({in_channels}) and "
                                f"groups ({self.groups}) the output channels ({out_channels}) and inter "
                                f"({self.hidden(in_channels)})")

    def params_for(self, in_channels: int, out_channels: int) -> int:
        inter, wide = self.hidden(in_channels), out_channels * self.radix
        norms = 2 * wide + 2 * inter if self.norm else 0  # BN after the conv (without bias), BN after fc1
        conv = in_channels // (self.groups * self.radix) * 9 * wide
        return conv + out_channels // self.groups * inter + inter + inter // self.groups * wide + wide + norms

    def macs_for(self, in_channels: int, y: Shape) -> int | None:
        inter, wide = self.hidden(in_channels), y.channels * self.radix
        per_pixel = in_channels // (self.groups * self.radix) * 9 * wide + self.radix * y.channels  # conv, weighting
        fcs = y.channels // self.groups * inter + inter // self.groups * wide
        return add_macs(scale_macs(per_pixel, y), fcs)

    def build_block_conv(self, x: Shape, ctx: Context, *, out: int, stride: int) -> "nn.Module":
        from netspec.modules.splat import SplitAttention

        return SplitAttention(x.channels, out, stride=stride, dilation=1, radix=self.radix, cardinality=self.groups,
                              hidden=self.hidden(x.channels), norm=self.norm)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        @st.composite
        def layers(draw: st.DrawFn) -> Splat:
            radix = draw(st.sampled_from([r for r in (1, 2, 4) if x.channels % r == 0]))
            groups = draw(st.sampled_from([g for g in (1, 2) if x.channels % (g * radix) == 0]))
            layer = cls(radix=radix, groups=groups, reduction=draw(st.integers(1, 8)),
                        min_hidden=draw(st.integers(1, 16).map(lambda k: k * groups)),
                        rounding=draw(st.sampled_from(["floor", "timm"])), norm=draw(st.booleans()))
            if layer.hidden(x.channels) % groups:  # C * radix is a multiple of the groups
                layer = layer.model_copy(update={"reduction": 1})
            return layer

        return layers()
