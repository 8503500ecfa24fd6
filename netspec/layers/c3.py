"""``c3``: YOLOv5's CSP bottleneck with three convolutions (Ultralytics ``C3``)."""
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


def csp3_info(x: Shape, ctx: Context, *, out: int, hidden: int, depth: int, kernels: tuple[int, int],
              norm: str) -> LayerInfo:
    """Shape rule of a C3 block (C3k too): two 1x1 convs to ``hidden``, ``depth`` bottlenecks on the first, a 1x1
    conv of the concatenation to ``out``. O(1) in the depth."""
    bias = norm == "none"
    first = conv_info(x, ctx, out=hidden, kernel=1, bias=bias, norm=norm)
    side = conv_info(x, ctx, out=hidden, kernel=1, bias=bias, norm=norm)
    half = first.shape
    inner = conv_info(half, ctx, out=hidden, kernel=kernels[0], padding=kernels[0] // 2, bias=bias, norm=norm)
    bottleneck = inner.then(conv_info(half, ctx, out=hidden, kernel=kernels[1], padding=kernels[1] // 2, bias=bias,
                                      norm=norm))
    macs = None if bottleneck.macs is None else depth * bottleneck.macs
    total = first.then(side).then(LayerInfo(half, depth * bottleneck.params, macs))
    pieces = Shape(2 * hidden, half.height, half.width)
    return total.then(conv_info(pieces, ctx, out=out, kernel=1, bias=bias, norm=norm))


class HalfWidthCSP(Layer):
    """Base of Ultralytics' CSP kinds whose bottlenecks work at half the output width (``c3``, ``c2f``): their
    params, width and checks; each kind gives its shape rule and builder."""

    out: Channels
    """output channels; the hidden width is h = out // 2"""
    depth: Depth = 1
    """number of bottlenecks"""
    shortcut: Flag = True
    """residual addition in each bottleneck"""
    norm: NormName | None = None
    act: ActName | None = None

    def hidden(self) -> int:
        return self.out // 2

    def check_widths(self, ctx: Context) -> None:
        """At most :data:`MAX_BLOCKS` bottlenecks (the same bound as a stage's: each is a module and, in a C2f, a
        concat piece), and a hidden width of at least 1."""
        if self.depth > MAX_BLOCKS:
            raise ctx.invalid("depth", f"at most {MAX_BLOCKS} bottlenecks, got {self.depth}")
        if self.hidden() < 1:
            raise ctx.invalid("out", f"must be at least 2 (the hidden width is out // 2), got {self.out}")

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, out=st.integers(2, 16), depth=st.integers(1, 3), shortcut=st.booleans(),
                         norm=st.sampled_from([None, "batch", "none"]), act=st.sampled_from([None, "silu", "relu"]))


@register
class C3(HalfWidthCSP):
    """YOLOv5 C3: two 1x1 convs to h (h = out/2), `depth` bottlenecks (1x1, 3x3) on the first, concat, 1x1 conv.

    Every conv is conv + norm + act, by default the spec's (YOLO specs: BN + SiLU). `out` scales with `scale.width`
    and `depth` with `scale.depth`, as in Ultralytics' model scales.
    """

    kind = "c3"
    paper = "Jocher et al. Ultralytics YOLOv5 (2020), ultralytics/nn/modules/block.py C3"

    shortcut: Flag = True
    """residual addition in each bottleneck (Ultralytics' default true; the v5 head sets false)"""

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        self.check_widths(ctx)
        return csp3_info(x, ctx, out=self.out, hidden=self.hidden(), depth=self.depth, kernels=(1, 3),
                         norm=self.norm or ctx.norm)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.yolo import C3 as C3Module

        return C3Module(x.channels, self.out, hidden=self.hidden(), depth=self.depth, shortcut=self.shortcut,
                        norm=self.norm or ctx.norm, act=self.act or ctx.act)

    def build_units(self) -> int:
        return 4 + 3 * self.depth
