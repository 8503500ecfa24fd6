"""``lambda``: LambdaNets' lambda layer with local position lambdas (timm ``LambdaLayer``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers._self_attention import SelfAttentionConv, head_dim
from netspec.layers.base import Flag, Layer, OddInt, PositiveInt
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Lambda(SelfAttentionConv):
    """Lambda layer: 1x1 qkv conv (no bias), BN on queries and values, content lambda softmax(K) V^T and local
    position lambdas from a 3-D conv (`r` x `r` x 1, with bias) over V, applied to `heads` queries (u = 1).

    Values are out / heads wide and shared by the heads; queries and keys have `dim_head` features. At stride 2
    (as a stage's `conv`) the output is average-pooled 2x2, then the block's norm and act follow.
    Only timm's `r` variant (local lambdas); its relative-position variant (r unset) is not offered.
    """

    kind = "lambda"
    paper = ("Bello. LambdaNetworks: Modeling Long-Range Interactions Without Attention. ICLR 2021 "
             "(arXiv:2102.08602)")

    heads: PositiveInt = 4
    """query heads; must divide the output channels (values are out / heads wide)"""
    dim_head: PositiveInt | None = 16
    """query/key features k; unset: make_divisible(out, 8) / heads (timm)"""
    r: OddInt = 9
    """the local position lambdas' receptive field (an odd size, r x r)"""
    bias: Flag = False
    """bias in the qkv conv (timm's qkv_bias)"""

    def params_at(self, x: Shape, out: int) -> int:
        k, v = head_dim(out, self.heads, self.dim_head, 1.0), out // self.heads
        qkv_out = self.heads * k + k + v
        return (x.channels + (1 if self.bias else 0)) * qkv_out + 2 * self.heads * k + 2 * v + k * self.r ** 2 + k

    def attention_macs(self, x: Shape, out: int, stride: int) -> int | None:
        pixels = x.pixels
        if pixels is None:
            return None
        k, v = head_dim(out, self.heads, self.dim_head, 1.0), out // self.heads
        projection = pixels * x.channels * (self.heads * k + k + v)
        content = k * pixels * v + self.heads * pixels * k * v
        position = k * self.r ** 2 * pixels * v + self.heads * pixels * k * v
        return projection + content + position

    def build_attention(self, x: Shape, *, out: int, stride: int) -> "nn.Module":
        from netspec.modules.self_attention import LambdaLayer

        return LambdaLayer(x.channels, out, heads=self.heads, dim_head=head_dim(out, self.heads, self.dim_head, 1.0),
                           radius=self.r, stride=stride, bias=self.bias)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        heads = [h for h in range(1, min(x.channels, 8) + 1) if x.channels % h == 0]
        return st.builds(cls, heads=st.sampled_from(heads), dim_head=st.one_of(st.none(), st.integers(1, 8)),
                         r=st.sampled_from([1, 3, 5, 9]), bias=st.booleans())
