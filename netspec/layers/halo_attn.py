"""``halo_attn``: HaloNet's blocked local self-attention with relative positions (timm ``HaloAttn``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers._self_attention import SelfAttentionConv, head_dim
from netspec.layers.base import Context, Flag, Layer, NonNegativeInt, PositiveInt
from netspec.layers.bottleneck_attn import QkRatio
from netspec.registry import register
from netspec.shapes import Shape, common_divisors

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class HaloAttn(SelfAttentionConv):
    """Halo attention: queries in `block` x `block` tiles attend to their tile plus a `halo` border of keys.

    q: 1x1 conv, kv: one 1x1 conv (no biases); the window (block + 2 halo)^2 is zero padded at the map's edges;
    logits (q.k) / sqrt(d) + relative position logits over the window (tables 2(block + 2 halo) - 1 rows);
    softmax over the window. H and W must be multiples of `block`. At stride 2 (as a stage's `conv`) the queries
    are subsampled (a 1x1 conv at stride 2) when `block` is even, else (or with `avg_down`) the output is
    average-pooled 2x2; the block's norm and act follow (timm's SelfAttnBlock).
    """

    kind = "halo_attn"
    paper = ("Vaswani, Ramachandran, Srinivas, Parmar, Hechtman, Shlens. Scaling Local Self-Attention for Parameter "
             "Efficient Visual Backbones. CVPR 2021 (arXiv:2103.12731)")

    heads: PositiveInt = 8
    """attention heads; must divide the output channels"""
    dim_head: PositiveInt | None = None
    """query/key features per head; default make_divisible(out * qk_ratio, 8) / heads (timm)"""
    block_size: PositiveInt = 8
    """query tile size; H and W must be multiples of it"""
    halo_size: NonNegativeInt = 3
    """key border around each tile (window = block_size + 2 halo_size)"""
    qk_ratio: QkRatio = 1.0
    """query/key width relative to the output when `dim_head` is not set"""
    avg_down: Flag = False
    """at stride 2: average-pool the output instead of subsampling the queries"""
    scale_pos: Flag = False
    """scale the position logits by 1/sqrt(d) too (timm's scale_pos_embed)"""
    bias: Flag = False
    """biases in the q and kv convs (timm's qkv_bias)"""

    def window(self) -> int:
        return self.block_size + 2 * self.halo_size

    def pooled(self, stride: int) -> bool:
        return stride > 1 and (self.avg_down or self.block_size % stride != 0)

    def check_size(self, x: Shape, stride: int, ctx: Context) -> None:
        for name, size in (("height", x.height), ("width", x.width)):
            if size is not None and size % self.block_size:
                ctx.error("block_size", f"must divide the input's {name} ({size}): the map is cut into "
                                        f"{self.block_size}x{self.block_size} query tiles")

    def params_at(self, x: Shape, out: int) -> int:
        qk = head_dim(out, self.heads, self.dim_head, self.qk_ratio)
        bias = 1 if self.bias else 0
        q = (x.channels + bias) * self.heads * qk
        kv = (x.channels + bias) * (self.heads * qk + out)
        return q + kv + 2 * (2 * self.window() - 1) * qk

    def attention_macs(self, x: Shape, out: int, stride: int) -> int | None:
        pixels = x.pixels
        if pixels is None:
            return None
        qk = head_dim(out, self.heads, self.dim_head, self.qk_ratio)
        query_pixels = pixels if self.pooled(stride) or stride == 1 else pixels // (stride * stride)
        window = self.window()
        projection = query_pixels * x.channels * self.heads * qk + pixels * x.channels * (self.heads * qk + out)
        positions = self.heads * query_pixels * qk * 2 * (2 * window - 1)
        # scores q.k over each window and the softmax-weighted values (two GEMMs: attend_in_windows)
        return projection + positions + query_pixels * window * window * self.heads * (qk + out // self.heads)

    def build_attention(self, x: Shape, *, out: int, stride: int) -> "nn.Module":
        from netspec.modules.self_attention import HaloAttention

        qk = head_dim(out, self.heads, self.dim_head, self.qk_ratio)
        return HaloAttention(x.channels, out, heads=self.heads, dim_head=qk, block=self.block_size,
                             halo=self.halo_size, stride=stride, avg_down=self.avg_down,
                             scale_positions=self.scale_pos, bias=self.bias)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and x.sized and (x.pixels or 0) <= 1024

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        assert x.height is not None and x.width is not None
        heads = [h for h in range(1, min(x.channels, 8) + 1) if x.channels % h == 0]
        blocks = common_divisors(x)
        return st.builds(cls, heads=st.sampled_from(heads), dim_head=st.one_of(st.none(), st.integers(1, 8)),
                         block_size=st.sampled_from(blocks), halo_size=st.integers(0, 3),
                         qk_ratio=st.sampled_from([0.5, 1.0]), avg_down=st.booleans(), scale_pos=st.booleans(),
                         bias=st.booleans())
