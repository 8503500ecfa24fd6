"""``c2psa``: YOLO11's CSP block around position-sensitive attention (Ultralytics ``C2PSA``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Layer
from netspec.layers.c3k2 import Expansion
from netspec.layers.conv import conv_info
from netspec.layers.psa import psa_heads, psa_info
from netspec.layers.stage import MAX_BLOCKS
from netspec.ops import ActName, NormName
from netspec.registry import register
from netspec.scaling import Channels, Depth
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class C2PSA(Layer):
    """YOLO11 C2PSA: 1x1 conv to 2h (h = int(in·e)), split, `depth` PSABlocks (`psa`, heads max(h // 64, 1),
    key_dim = head_dim / 2) on the second half, concat, 1x1 conv to `out`.

    Ultralytics requires `out` equal to the input channels (the hidden width comes from the input); so does netspec.
    `out` scales with `scale.width` and `depth` with `scale.depth`.
    """

    kind = "c2psa"
    paper = "Jocher, Qiu. Ultralytics YOLO11 (2024), ultralytics/nn/modules/block.py C2PSA"

    out: Channels | None = None
    """output channels, equal to the input's (as Ultralytics asserts); default: the input's"""
    depth: Depth = 1
    """number of PSABlocks"""
    e: Expansion = 0.5
    """hidden width as a fraction of the input channels: h = int(in * e)"""
    norm: NormName | None = None
    act: ActName | None = None

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if x.flat:
            raise ctx.invalid(None, f"c2psa needs a feature map (N, C, H, W), got {x}")
        if self.out is not None and self.out != x.channels:
            raise ctx.invalid("out", f"must equal the input channels ({x.channels}), got {self.out} (Ultralytics' "
                                     "C2PSA keeps the width)")
        if self.depth > MAX_BLOCKS:
            raise ctx.invalid("depth", f"at most {MAX_BLOCKS} blocks, got {self.depth}")
        hidden = int(x.channels * self.e)
        heads = psa_heads(hidden, None)
        if hidden < 2 or hidden % heads or hidden // heads < 2:
            raise ctx.invalid("e", f"the hidden width int({x.channels} * {self.e}) = {hidden} must be at least 2 and "
                                   f"divide into {heads} heads of at least 2 channels")
        norm = self.norm or ctx.norm
        bias = norm == "none"
        total = conv_info(x, ctx, out=2 * hidden, kernel=1, bias=bias, norm=norm)
        half = Shape(hidden, total.shape.height, total.shape.width)
        block = psa_info(half, ctx, heads=heads, key_dim=hidden // heads // 2, norm=norm)
        macs = None if block.macs is None else self.depth * block.macs
        total = total.then(LayerInfo(half, self.depth * block.params, macs))
        return total.then(conv_info(Shape(2 * hidden, half.height, half.width), ctx, out=x.channels, kernel=1,
                                    bias=bias, norm=norm))

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.yolo import C2PSA as C2PSAModule

        hidden = int(x.channels * self.e)
        heads = psa_heads(hidden, None)
        return C2PSAModule(x.channels, x.channels, hidden=hidden, depth=self.depth, heads=heads,
                           key_dim=hidden // heads // 2, norm=self.norm or ctx.norm, act=self.act or ctx.act)

    def build_units(self) -> int:
        return 3 + 12 * self.depth

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and x.channels >= 8

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, out=st.sampled_from([None, x.channels]), depth=st.integers(1, 2), e=st.sampled_from([0.5, 1.0]),
                         norm=st.sampled_from([None, "batch", "none"]), act=st.sampled_from([None, "silu", "relu"]))
