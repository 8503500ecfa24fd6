"""``sk``: Selective Kernel unit, attention over branches with different receptive fields (SKNet)."""
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

MAX_BRANCHES = 16
"""Most SK branches: each is a 3x3 conv of growing dilation (SKNet uses 2 or 3); building a million would take hours."""
BranchCount = Annotated[int, Strict(), Field(ge=2, le=MAX_BRANCHES)]


@register
class SK(AttentionConv):
    """Selective Kernel: `branches` grouped 3x3 convs (dilation 1, 2, ...) + BN + ReLU, softmax-weighted sum.

    Fuse: the branch sum is pooled, then fc C->d (d = max(C/`reduction`, `min_hidden`)) + BN + ReLU; select:
    one 1x1 conv d->M*C without bias, softmax over the M branches. Standalone it keeps (N, C, H, W); as a
    stage's `conv` it replaces the bottleneck's strided 3x3 conv, with the stride on every branch (SKNet-50).
    Its convs use BatchNorm + ReLU as the official SKNet, whatever the spec's defaults. timm's SelectiveKernel
    (``timm:sk``, SKResNet's unit) is `{groups: 1, split: true, min_hidden: 8, rounding: timm}`.
    """

    kind = "sk"
    paper = "Li, Wang, Hu, Yang. Selective Kernel Networks. CVPR 2019 (arXiv:1903.06586)"

    branches: BranchCount = 2
    """number of branches M (2 to 16): 3x3 convs with dilation 1, 2, ..., M (receptive fields 3, 5, 7, ...)"""
    groups: PositiveInt = 32
    """groups G of each branch conv; must divide the channels"""
    reduction: PositiveInt = 16
    """reduction ratio r of the fuse fc: d = max(C / r, min_hidden)"""
    min_hidden: PositiveInt = 32
    """L, the least width d of the fuse fc"""
    split: Flag = False
    """each branch convolves its own 1/M of the input channels (timm's SelectiveKernel ``split_input``, SKResNet)"""

    def build_units(self) -> int:
        return 4 * self.branches + 6  # per branch: conv, norm, act (and a list entry); then fuse and select

    rounding: Literal["floor", "timm"] = "floor"
    """d = max(C // r, L) (SKNet), or timm's make_divisible(C / r, L): the nearest multiple of L, at least L, one
    more multiple when rounding down lost over 10%"""

    def hidden(self, channels: int) -> int:
        """d = max(C / r, L), or timm's multiple of L."""
        return reduced_width(channels, self.reduction, self.min_hidden, self.rounding, divisor=self.min_hidden)

    def branch_input(self, in_channels: int) -> int:
        """Input channels of each branch conv: all of them, or 1/M of them with `split`."""
        return in_channels // self.branches if self.split else in_channels

    def check_channels(self, in_channels: int, out_channels: int, ctx: Context) -> None:
        if self.split and in_channels % self.branches:
            ctx.error("split", f"the {self.branches} branches must divide the {in_channels} input channels")
        in_channels = self.branch_input(in_channels)
        if in_channels % self.groups or out_channels % self.groups:
            channels = f"{in_channels}" if in_channels == out_channels else f"{in_channels} in, {out_channels} out"
            ctx.error("groups", f"must divide the channels ({channels})")
        if self.reduction > out_channels:
            ctx.error("reduction", f"must be <= {out_channels} (the unit has {out_channels} channels)")

    def params_for(self, in_channels: int, out_channels: int) -> int:
        hidden = self.hidden(out_channels)
        in_channels = self.branch_input(in_channels)
        branch = (in_channels // self.groups) * 9 * out_channels + 2 * out_channels  # conv without bias, BN
        return self.branches * branch + out_channels * hidden + 2 * hidden + hidden * self.branches * out_channels

    def macs_for(self, in_channels: int, y: Shape) -> int | None:
        hidden = self.hidden(y.channels)
        in_channels = self.branch_input(in_channels)
        per_pixel = self.branches * ((in_channels // self.groups) * 9 + 1)  # branch convs, then weighting
        spatial = scale_macs(per_pixel * y.channels, y)
        return add_macs(spatial, y.channels * hidden + hidden * self.branches * y.channels)

    def build_block_conv(self, x: Shape, ctx: Context, *, out: int, stride: int) -> "nn.Module":
        from netspec.modules.sk import SelectiveKernel

        return SelectiveKernel(x.channels, out, stride=stride, branches=self.branches, groups=self.groups,
                               hidden=self.hidden(out), split=self.split)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        divisors = [g for g in range(1, x.channels + 1) if x.channels % g == 0]
        plain = st.builds(
            cls,
            branches=st.integers(2, 3),
            groups=st.sampled_from(divisors),
            reduction=st.integers(1, x.channels),
            min_hidden=st.integers(1, 40),
            rounding=st.sampled_from(["floor", "timm"]),
        )
        if x.channels % 2:
            return plain
        half = x.channels // 2  # split: each of 2 branches convolves half the channels, groups divide the half
        return plain | st.builds(cls, branches=st.just(2),
                                 groups=st.sampled_from([g for g in divisors if half % g == 0]),
                                 reduction=st.integers(1, x.channels), min_hidden=st.integers(1, 40),
                                 split=st.just(True), rounding=st.sampled_from(["floor", "timm"]))
