"""``c2``: the CSP bottleneck with two convolutions of YOLOv8's P6 models (Ultralytics ``C2``)."""
from __future__ import annotations

from netspec.layers.base import Flag
from netspec.layers.c2f import C2f
from netspec.registry import register


@register
class C2(C2f):
    """Ultralytics C2 (yolov8-p6.yaml's neck): 1x1 conv to 2h (h = out/2), split in halves, `depth` bottlenecks (two
    3x3 convs, residual when `shortcut`) on the first, concat with the second, 1x1 conv to `out`.

    Unlike `c2f`, only the two halves are concatenated. Every conv is conv + norm + act, by default the spec's.
    `out` scales with `scale.width` and `depth` with `scale.depth`, as in Ultralytics' model scales.
    """

    kind = "c2"
    paper = "Jocher et al. Ultralytics YOLOv8 (2023), ultralytics/nn/modules/block.py C2"

    shortcut: Flag = True
    """residual addition in each bottleneck (Ultralytics' default true; yolov8-p6's neck sets false)"""

    module = "C2"

    def concat_pieces(self) -> int:
        """Only the two halves: the bottlenecks' output replaces the first."""
        return 2
