"""``c2f``: YOLOv8's CSP bottleneck with two convolutions (Ultralytics ``C2f``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Flag, Layer
from netspec.layers.conv import conv_info
from netspec.layers.stage import MAX_BLOCKS
from netspec.ops import ActName, NormName
from netspec.registry import register
from netspec.scaling import Channels, Depth
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class C2f(Layer):
    """YOLOv8 C2f: 1x1 conv to 2h (h = out/2), split in halves, `depth` bottlenecks on the second, concat, 1x1 conv.

    Each bottleneck is two 3x3 convs (residual when `shortcut`), chained on the last piece; the concatenation holds
    all 2 + `depth` pieces. Every conv is conv + norm + act, by default the spec's (YOLO specs: BN + SiLU).
    `out` scales with `scale.width` and `depth` with `scale.depth`, as in Ultralytics' model scales.
    """

    kind = "c2f"
    paper = "Jocher, Chaurasia, Qiu. Ultralytics YOLOv8 (2023), ultralytics/nn/modules/block.py C2f"

    out: Channels
    """output channels; the hidden width is h = out // 2"""
    depth: Depth = 1
    """number of bottlenecks"""
    shortcut: Flag = False
    """residual addition in each bottleneck (Ultralytics' default false; the v8 backbone sets true)"""
    norm: NormName | None = None
    act: ActName | None = None

    def hidden(self) -> int:
        return self.out // 2

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        hidden = self.hidden()
        if self.depth > MAX_BLOCKS:  # the same bound as a stage's: every bottleneck is a module and a concat piece
            raise ctx.invalid("depth", f"at most {MAX_BLOCKS} bottlenecks, got {self.depth}")
        if hidden < 1:
            raise ctx.invalid("out", f"must be at least 2 (the hidden width is out // 2), got {self.out}")
        norm = self.norm or ctx.norm
        bias = norm == "none"
        total = conv_info(x, ctx, out=2 * hidden, kernel=1, bias=bias, norm=norm)
        half = Shape(hidden, total.shape.height, total.shape.width)
        first = conv_info(half, ctx, out=hidden, kernel=3, padding=1, bias=bias, norm=norm)
        bottleneck = first.then(conv_info(half, ctx, out=hidden, kernel=3, padding=1, bias=bias, norm=norm))
        macs = None if bottleneck.macs is None else self.depth * bottleneck.macs
        total = total.then(LayerInfo(half, self.depth * bottleneck.params, macs))  # O(1) in the depth
        pieces = Shape((2 + self.depth) * hidden, half.height, half.width)
        return total.then(conv_info(pieces, ctx, out=self.out, kernel=1, bias=bias, norm=norm))

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.yolo import C2f as C2fModule

        return C2fModule(x.channels, self.out, hidden=self.hidden(), depth=self.depth, shortcut=self.shortcut,
                         norm=self.norm or ctx.norm, act=self.act or ctx.act)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, out=st.integers(2, 16), depth=st.integers(1, 3), shortcut=st.booleans(),
                         norm=st.sampled_from([None, "batch", "none"]), act=st.sampled_from([None, "silu", "relu"]))
