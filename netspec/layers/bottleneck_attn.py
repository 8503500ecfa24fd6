"""``bottleneck_attn``: BoTNet's multi-head self-attention with 2-D relative positions (timm ``BottleneckAttn``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, Strict

from netspec.layers._self_attention import SelfAttentionConv, head_dim
from netspec.layers.base import Context, Flag, Layer, PositiveInt
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

QkRatio = Annotated[float, Strict(), Field(gt=0, le=16, allow_inf_nan=False)]
FeatureSize = PositiveInt | Annotated[tuple[PositiveInt, PositiveInt], Field()]

BOTNET_PAPER = ("Srinivas, Lin, Parmar, Shlens, Abbeel, Vaswani. Bottleneck Transformers for Visual Recognition. "
                "CVPR 2021 (arXiv:2101.11605)")


@register
class BottleneckAttn(SelfAttentionConv):
    """BoTNet self-attention: 1x1 qkv conv (no bias), softmax over all H*W keys with relative position logits.

    Logits are (q.k) / sqrt(d) + q.R_h[h_k - h_q] + q.R_w[w_k - w_q] over a fixed H x W map (the static input
    size: the position tables have 2H-1 and 2W-1 rows), values split over `heads`. As a stage's `conv` it replaces
    the bottleneck's 3x3 conv, followed by the block's norm and act (timm's SelfAttnBlock); stride 2 average-pools
    the output 2x2. Runs as softmax attention with H + W extra query/key features (exact), so no H*W x H*W matrix
    is kept for backward. 512 channels at 16x16, 4 heads: 794,368 parameters.
    """

    kind = "bottleneck_attn"
    paper = BOTNET_PAPER

    heads: PositiveInt = 4
    """attention heads; must divide the output channels (each head gets out / heads value channels)"""
    dim_head: PositiveInt | None = None
    """query/key features per head; default make_divisible(out * qk_ratio, 8) / heads (timm)"""
    qk_ratio: QkRatio = 1.0
    """query/key width relative to the output when `dim_head` is not set"""
    pos: Literal["rel"] = "rel"
    """position encoding: relative logits along height and width (the one BoTNet and timm use)"""
    size: FeatureSize | None = None
    """the map size H (or [H, W]) the position tables cover; default: the input's static size (must match it)"""
    scale_pos: Flag = False
    """scale the position logits by 1/sqrt(d) too (timm's scale_pos_embed)"""
    bias: Flag = False
    """bias in the qkv conv (timm's qkv_bias)"""

    def dims(self, out_channels: int) -> tuple[int, int]:
        """(query/key features per head, value features per head)."""
        return head_dim(out_channels, self.heads, self.dim_head, self.qk_ratio), out_channels // self.heads

    def table_size(self, x: Shape) -> tuple[int | None, int | None]:
        if self.size is None:
            return x.height, x.width
        return (self.size, self.size) if isinstance(self.size, int) else self.size

    def check_size(self, x: Shape, stride: int, ctx: Context) -> None:
        if x.height is None or x.width is None:
            if self.size is None:
                ctx.error(None, "needs a static input size for its position tables: give the spec "
                                "`input: {size: ...}` or this layer `size: [H, W]`")
            return
        height, width = self.table_size(x)
        if (height, width) != (x.height, x.width):
            ctx.error("size", f"the position tables cover {height}x{width} maps, but the input here is "
                              f"{x.height}x{x.width}: set `size: [{x.height}, {x.width}]` or leave it out")

    def params_at(self, x: Shape, out_channels: int) -> int:
        qk, _ = self.dims(out_channels)
        height, width = self.table_size(x)
        qkv_out = 2 * self.heads * qk + out_channels
        qkv = (x.channels + (1 if self.bias else 0)) * qkv_out
        return qkv + (2 * (height or 1) - 1 + 2 * (width or 1) - 1) * qk

    def attention_macs(self, x: Shape, out: int, stride: int) -> int | None:
        pixels = x.pixels
        if pixels is None or x.height is None or x.width is None:
            return None
        qk, value = self.dims(out)
        projection = pixels * x.channels * (2 * self.heads * qk + out)
        positions = self.heads * pixels * qk * (2 * x.height - 1 + 2 * x.width - 1)
        # softmax attention over query/key features widened by the H + W position features, the narrower of them
        # and the values zero-padded to the other's width (the rewrite it runs)
        width = max(qk + x.height + x.width, value)
        return projection + positions + self.heads * pixels * pixels * 2 * width

    def build_attention(self, x: Shape, *, out: int, stride: int) -> "nn.Module":
        from netspec.modules.self_attention import BottleneckAttention

        qk, _ = self.dims(out)
        height, width = self.table_size(x)
        assert height is not None and width is not None  # checked by check_size
        return BottleneckAttention(x.channels, out, size=(height, width), heads=self.heads, dim_head=qk,
                                   stride=stride, scale_positions=self.scale_pos, bias=self.bias)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and x.sized and (x.pixels or 0) <= 256

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        divisors = [h for h in range(1, min(x.channels, 8) + 1) if x.channels % h == 0]
        return st.builds(cls, heads=st.sampled_from(divisors), dim_head=st.one_of(st.none(), st.integers(1, 8)),
                         qk_ratio=st.sampled_from([0.5, 1.0, 2.0]), scale_pos=st.booleans(), bias=st.booleans())

