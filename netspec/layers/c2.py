"""``c2``: the CSP bottleneck with two convolutions of YOLOv8's P6 models (Ultralytics ``C2``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Flag
from netspec.layers.c3 import HalfWidthCSP
from netspec.layers.c2f import bottleneck_info, c2f_info
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from torch import nn


@register
class C2(HalfWidthCSP):
    """Ultralytics C2 (yolov8-p6.yaml's neck): 1x1 conv to 2h (h = out/2), split in halves, `depth` bottlenecks (two
    3x3 convs, residual when `shortcut`) on the first, concat with the second, 1x1 conv to `out`.

    Unlike `c2f`, only the two halves are concatenated. Every conv is conv + norm + act, by default the spec's.
    `out` scales with `scale.width` and `depth` with `scale.depth`, as in Ultralytics' model scales.
    """

    kind = "c2"
    paper = "Jocher et al. Ultralytics YOLOv8 (2023), ultralytics/nn/modules/block.py C2"

    shortcut: Flag = True
    """residual addition in each bottleneck (Ultralytics' default true; yolov8-p6's neck sets false)"""

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        self.check_widths(ctx)
        norm = self.norm or ctx.norm
        return c2f_info(x, ctx, out=self.out, hidden=self.hidden(), depth=self.depth, norm=norm,
                        block=bottleneck_info(ctx, norm), pieces=2)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.yolo import C2 as C2Module

        return C2Module(x.channels, self.out, hidden=self.hidden(), depth=self.depth, shortcut=self.shortcut,
                        norm=self.norm or ctx.norm, act=self.act or ctx.act)

    def build_units(self) -> int:
        return 4 + 3 * self.depth
