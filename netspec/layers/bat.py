"""``bat``: Bilinear Attentional Transform non-local block (timm ``BatNonLocalAttn``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers._timm_rules import timm_divisible
from netspec.layers.base import Attention, Context, Layer, PositiveInt, Probability
from netspec.registry import register
from netspec.shapes import Shape, common_divisors

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class BAT(Attention):
    """BAT: 1x1 conv C->rd + BN + ReLU; bilinear transform (per group, block x block row/column attention
    matrices from max-pooled strips, sigmoid, normalised, expanded block-wise to the map; y = P x Q, then 1x1
    rd->rd + BN + ReLU); 1x1 rd->C + BN + ReLU; Dropout2d(`drop`); + x.

    rd = make_divisible(C x `ratio`, 8); H and W must be multiples of `block_size`, rd of `groups`.
    """

    kind = "bat"
    paper = ("Chi, Yuan, Yu, Zhang, Tao, Dai. Non-Local Neural Networks With Grouped Bilinear Attentional "
             "Transforms. CVPR 2020")

    block_size: PositiveInt = 7
    """block of the attention matrices; H and W must be multiples of it"""
    groups: PositiveInt = 2
    """groups of the bilinear transform; must divide rd"""
    reduction: PositiveInt = 4
    """rd = make_divisible(C / reduction, 8) (timm's rd_ratio 0.25)"""
    drop: Probability = 0.2
    """Dropout2d rate before the residual addition (training only)"""

    def hidden(self, channels: int) -> int:
        return timm_divisible(channels / self.reduction, 8)

    def check(self, x: Shape, ctx: Context) -> None:
        hidden = self.hidden(x.channels)
        if hidden % self.groups:
            ctx.error("groups", f"must divide the reduced width rd = {hidden} (make_divisible(C / reduction, 8) "
                                f"for {x.channels} channels)")
        for name, size in (("height", x.height), ("width", x.width)):
            if size is not None and size % self.block_size:
                ctx.error("block_size", f"must divide the input's {name} ({size}): the attention matrices are "
                                        "expanded block by block")

    def count(self, channels: int, ctx: Context) -> int:
        hidden, groups, block = self.hidden(channels), self.groups, self.block_size
        convs = channels * hidden + 2 * hidden + hidden * channels + 2 * channels  # conv1, conv2 with BN
        transform = hidden * groups + 2 * groups + 2 * (groups * block * block * groups * block + block * block * groups)
        return convs + transform + hidden * hidden + 2 * hidden

    def macs_per_sample(self, x: Shape) -> int | None:
        if x.pixels is None or x.height is None or x.width is None:
            return None
        hidden, groups, block = self.hidden(x.channels), self.groups, self.block_size
        pixels, height, width = x.pixels, x.height, x.width
        convs = pixels * (2 * x.channels * hidden + hidden * groups + hidden * hidden)
        strips = 2 * block ** 3 * groups * groups
        expansion = (hidden * height * height if height > block else 0) + (hidden * width * width if width > block else 0)
        products = hidden * height * width * (height + width)  # P @ x, then @ Q
        return convs + strips + expansion + products

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.timm_attention import BatNonLocal

        return BatNonLocal(x.channels, self.hidden(x.channels), block=self.block_size, groups=self.groups,
                           drop=self.drop)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and x.sized and (x.pixels or 0) <= 1024

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        assert x.height is not None and x.width is not None
        blocks = common_divisors(x)
        # rd = make_divisible(C / r, 8) is a multiple of 8: groups 1, 2, 4 or 8 always divide it
        return st.builds(cls, block_size=st.sampled_from(blocks), groups=st.sampled_from([1, 2, 4, 8]),
                         reduction=st.integers(1, 8), drop=st.sampled_from([0.0, 0.2]))
