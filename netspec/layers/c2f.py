"""``c2f``: YOLOv8's CSP bottleneck with two convolutions (Ultralytics ``C2f``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from netspec.layers.base import Context, Flag
from netspec.layers.c3 import HalfWidthCSP
from netspec.layers.conv import conv_info
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from collections.abc import Callable

    from torch import nn


def c2f_info(x: Shape, ctx: Context, *, out: int, hidden: int, depth: int, norm: str,
             block: "Callable[[Shape], LayerInfo]", pieces: int | None = None) -> LayerInfo:
    """Shape rule of a C2f (C3k2 and C2 too): a 1x1 conv to 2 ``hidden``, split in halves, ``depth`` blocks
    (``block``: the shape rule of one, on a half) chained on one piece, a 1x1 conv of the concatenated ``pieces``
    half-width maps (C2f: all 2 + ``depth``; C2: the two halves) to ``out``. O(1) in the depth."""
    bias = norm == "none"
    total = conv_info(x, ctx, out=2 * hidden, kernel=1, bias=bias, norm=norm)
    half = Shape(hidden, total.shape.height, total.shape.width)
    one = block(half)
    macs = None if one.macs is None else depth * one.macs
    total = total.then(LayerInfo(half, depth * one.params, macs))
    concat = Shape((2 + depth if pieces is None else pieces) * hidden, half.height, half.width)
    return total.then(conv_info(concat, ctx, out=out, kernel=1, bias=bias, norm=norm))


def bottleneck_info(ctx: Context, norm: str) -> "Callable[[Shape], LayerInfo]":
    """Shape rule of Ultralytics' ``Bottleneck`` at its input width: two 3x3 convs (the residual adds nothing)."""
    bias = norm == "none"

    def bottleneck(half: Shape) -> LayerInfo:
        first = conv_info(half, ctx, out=half.channels, kernel=3, padding=1, bias=bias, norm=norm)
        return first.then(conv_info(half, ctx, out=half.channels, kernel=3, padding=1, bias=bias, norm=norm))

    return bottleneck


@register
class C2f(HalfWidthCSP):
    """YOLOv8 C2f: 1x1 conv to 2h (h = out/2), split in halves, `depth` bottlenecks on the second, concat, 1x1 conv.

    Each bottleneck is two 3x3 convs (residual when `shortcut`), chained on the last piece; the concatenation holds
    all 2 + `depth` pieces. Every conv is conv + norm + act, by default the spec's (YOLO specs: BN + SiLU).
    `out` scales with `scale.width` and `depth` with `scale.depth`, as in Ultralytics' model scales.
    """

    kind = "c2f"
    paper = "Jocher, Chaurasia, Qiu. Ultralytics YOLOv8 (2023), ultralytics/nn/modules/block.py C2f"

    shortcut: Flag = False
    """residual addition in each bottleneck (Ultralytics' default false; the v8 backbone sets true)"""
    module: ClassVar[str] = "C2f"
    """its torch module in ``netspec.modules.yolo`` (Ultralytics' layout, registered cv1, cv2, m)"""

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        self.check_widths(ctx)
        norm = self.norm or ctx.norm
        return c2f_info(x, ctx, out=self.out, hidden=self.hidden(), depth=self.depth, norm=norm,
                        block=bottleneck_info(ctx, norm), pieces=self.concat_pieces())

    def concat_pieces(self) -> int:
        """Half-width maps the last 1x1 conv reads: both halves and every bottleneck's output."""
        return 2 + self.depth

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules import yolo

        module = getattr(yolo, self.module)
        return module(x.channels, self.out, hidden=self.hidden(), depth=self.depth, shortcut=self.shortcut,
                      norm=self.norm or ctx.norm, act=self.act or ctx.act)
