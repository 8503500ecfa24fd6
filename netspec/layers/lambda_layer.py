"""``lambda``: LambdaNets' lambda layer with local position lambdas, or relative ones over the whole map
(timm ``LambdaLayer``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers._self_attention import SelfAttentionConv, head_dim
from netspec.layers.base import Context, Flag, Layer, OddInt, PositiveInt
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
    `r: null` is timm's relative-position variant (lambda_resnet26rpt): the position lambdas come from an embedding
    E of (2H-1) x (2W-1) x k over the whole (static) input map, E[h_n - h_m, w_n - w_m] weighting value n for
    query m; netspec computes it as the same sum written as a convolution of the values with E (no M x M x k
    tensor, which timm's gather builds).
    """

    kind = "lambda"
    paper = ("Bello. LambdaNetworks: Modeling Long-Range Interactions Without Attention. ICLR 2021 "
             "(arXiv:2102.08602)")

    heads: PositiveInt = 4
    """query heads; must divide the output channels (values are out / heads wide)"""
    dim_head: PositiveInt | None = 16
    """query/key features k; unset: make_divisible(out, 8) / heads (timm)"""
    r: OddInt | None = 9
    """the local position lambdas' receptive field (an odd size, r x r); null: relative position lambdas over the
    whole map, their table sized by the static input size"""
    bias: Flag = False
    """bias in the qkv conv (timm's qkv_bias)"""

    def check_size(self, x: Shape, stride: int, ctx: Context) -> None:
        if self.r is None and (x.height is None or x.width is None):
            ctx.error("r", "null (relative position lambdas) needs a static input size for the position table: "
                           "give the spec `input: {size: ...}`, or set r for local lambdas")

    def position_params(self, x: Shape, k: int) -> int:
        """The local lambdas' r x r x 1 conv (with bias), or the (2H-1) x (2W-1) x k relative table."""
        if self.r is not None:
            return k * self.r ** 2 + k
        return (2 * (x.height or 1) - 1) * (2 * (x.width or 1) - 1) * k

    def params_at(self, x: Shape, out: int) -> int:
        k, v = head_dim(out, self.heads, self.dim_head, 1.0), out // self.heads
        qkv_out = self.heads * k + k + v
        return (x.channels + (1 if self.bias else 0)) * qkv_out + 2 * self.heads * k + 2 * v + self.position_params(x, k)

    def attention_macs(self, x: Shape, out: int, stride: int) -> int | None:
        pixels = x.pixels
        if pixels is None:
            return None
        k, v = head_dim(out, self.heads, self.dim_head, 1.0), out // self.heads
        projection = pixels * x.channels * (self.heads * k + k + v)
        content = k * pixels * v + self.heads * pixels * k * v
        # relative: the convolution with the (2H-1) x (2W-1) table, as it runs (zero padding included)
        window = self.r ** 2 if self.r is not None else (2 * (x.height or 1) - 1) * (2 * (x.width or 1) - 1)
        position = k * window * pixels * v + self.heads * pixels * k * v
        return projection + content + position

    def build_attention(self, x: Shape, *, out: int, stride: int) -> "nn.Module":
        from netspec.modules.self_attention import LambdaLayer

        return LambdaLayer(x.channels, out, heads=self.heads, dim_head=head_dim(out, self.heads, self.dim_head, 1.0),
                           radius=self.r, size=(x.height or 1, x.width or 1), stride=stride, bias=self.bias)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        heads = [h for h in range(1, min(x.channels, 8) + 1) if x.channels % h == 0]
        return st.builds(cls, heads=st.sampled_from(heads), dim_head=st.one_of(st.none(), st.integers(1, 8)),
                         r=st.sampled_from([1, 3, 5, 9] + ([None] if x.sized else [])), bias=st.booleans())
