"""``psa``: YOLO11's position-sensitive attention block (Ultralytics ``PSABlock``), the attention C2PSA carries."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, Strict

from netspec.layers.base import Attention, Context, Flag, Layer, PositiveInt
from netspec.layers.conv import conv_info
from netspec.ops import ActName, NormName
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

Ratio = Annotated[float, Strict(), Field(gt=0, le=4, allow_inf_nan=False)]


def psa_heads(channels: int, heads: int | None) -> int:
    """Ultralytics' head count: ``max(C // 64, 1)`` unless given."""
    return max(channels // 64, 1) if heads is None else heads


def psa_info(x: Shape, ctx: Context, *, heads: int, key_dim: int, norm: str) -> LayerInfo:
    """Shape rule of one PSABlock on ``x``: qkv, proj and the depthwise position encoding (convs + norm), the two
    attention matmuls (heads · (H·W)² · (key_dim + head_dim)), the feed-forward (1x1 to 2C, 1x1 back)."""
    bias = norm == "none"
    channels = x.channels
    qkv = conv_info(x, ctx, out=channels + 2 * key_dim * heads, kernel=1, bias=bias, norm=norm)
    proj = conv_info(x, ctx, out=channels, kernel=1, bias=bias, norm=norm)
    pe = conv_info(x, ctx, out=channels, kernel=3, padding=1, groups=channels, bias=bias, norm=norm)
    pixels = x.pixels
    attend = LayerInfo(x, 0, None if pixels is None else pixels * pixels * (heads * key_dim + channels))
    wide = conv_info(x, ctx, out=2 * channels, kernel=1, bias=bias, norm=norm)
    back = conv_info(wide.shape, ctx, out=channels, kernel=1, bias=bias, norm=norm)
    return qkv.then(attend).then(pe).then(proj).then(wide).then(back)


@register
class PSA(Attention):
    """PSABlock: x + attention(x), then x + a feed-forward (1x1 conv to 2C + act, 1x1 conv back); C -> C.

    Attention: a 1x1 conv + norm gives per head a query and a key of key_dim = int(head_dim · `attn_ratio`) and a
    value of head_dim = C / heads; softmax(q·k / sqrt(key_dim)) over the H·W positions weights the values, plus a
    depthwise 3x3 conv + norm of the values (position encoding), then a 1x1 conv + norm. heads default to
    max(C // 64, 1), as in C2PSA. Runs through scaled_dot_product_attention (or bounded chunks on the CPU): the
    (HW x HW) score matrix is never held whole at large maps.
    """

    kind = "psa"
    paper = "Jocher, Qiu. Ultralytics YOLO11 (2024), ultralytics/nn/modules/block.py PSABlock, Attention"

    heads: PositiveInt | None = None
    """attention heads (C must divide by it); default max(C // 64, 1)"""
    attn_ratio: Ratio = 0.5
    """key size as a fraction of the head size: key_dim = int(head_dim * attn_ratio)"""
    shortcut: Flag = True
    """residual additions around the attention and the feed-forward"""
    norm: NormName = "batch"
    """norm after each conv (Ultralytics: BatchNorm), whatever the spec's defaults"""
    act: ActName = "silu"
    """activation of the feed-forward's first conv (Ultralytics: SiLU), whatever the spec's defaults"""

    def key_dim(self, channels: int) -> int:
        return int(channels // psa_heads(channels, self.heads) * self.attn_ratio)

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if x.flat:
            raise ctx.invalid(None, f"psa needs a feature map (N, C, H, W), got {x}")
        heads = psa_heads(x.channels, self.heads)
        if x.channels % heads:
            raise ctx.invalid("heads", f"the {x.channels} channels must divide into {heads} heads")
        if self.key_dim(x.channels) < 1:
            raise ctx.invalid("attn_ratio", f"the key size int({x.channels // heads} * {self.attn_ratio}) is 0")
        return psa_info(x, ctx, heads=heads, key_dim=self.key_dim(x.channels), norm=self.norm)

    def count(self, channels: int, ctx: Context) -> int:
        return self.infer(Shape(channels), ctx).params

    def macs_per_sample(self, x: Shape) -> int | None:
        return self.infer(x, Context()).macs

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.yolo import PSABlock

        return PSABlock(x.channels, heads=psa_heads(x.channels, self.heads), key_dim=self.key_dim(x.channels),
                        shortcut=self.shortcut, norm=self.norm, act=self.act)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and x.channels >= 2

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        divisors = [h for h in range(1, min(x.channels, 4) + 1) if x.channels % h == 0 and x.channels // h >= 2]
        return st.builds(cls, heads=st.sampled_from([None, *divisors]),
                         attn_ratio=st.sampled_from([0.5, 1.0]), shortcut=st.booleans(),
                         norm=st.sampled_from(["batch", "none"]), act=st.sampled_from(["silu", "relu"]))
