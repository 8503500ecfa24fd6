"""``segment``: the YOLO instance-segmentation head (Ultralytics ``Segment``: YOLOv8-seg, YOLO11-seg)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Layer, PositiveInt
from netspec.layers.conv import conv_info
from netspec.layers.detect import Detect, branch_info, detect_widths, level_strides, segment_width
from netspec.registry import register
from netspec.scaling import Channels
from netspec.shapes import LayerInfo, Shape, add_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Segment(Detect):
    """YOLO segmentation head on `from: [p3, p4, p5]`: Detect, plus per level a mask-coefficient branch (3x3, 3x3,
    1x1 to `masks`; width max(C/4, masks)) and Proto on the first level (3x3 conv to `protos`, 2x transposed conv,
    3x3 conv, 1x1 conv to `masks`).

    Training mode returns Detect's dict plus `mask_coefficient` (N, masks, A) and `proto` (N, masks, 2H, 2W)
    (Ultralytics 8.4); eval mode `(detections, protos)`: (N, 4 + classes + masks, A), the decoded boxes, sigmoid
    scores and mask coefficients (the shape the summary shows), and the prototypes. `protos` scales with
    `scale.width` (as Ultralytics' parse_model scales it); `classes`, `masks` and `reg_max` never scale.
    """

    kind = "segment"
    paper = "Jocher, Chaurasia, Qiu. Ultralytics YOLOv8 (2023), ultralytics/nn/modules/head.py Segment"

    masks: PositiveInt = 32
    """mask coefficients per anchor, and prototype masks (Ultralytics' nm)"""
    protos: Channels = 256
    """channels of Proto's convs (Ultralytics' npr; width-scaled)"""

    def infer_inputs(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        detect = super().infer_inputs(inputs, ctx)
        norm = self.norm or ctx.norm
        bias = norm == "none"
        width = segment_width(inputs[0].channels, self.masks)
        params, macs = detect.params, detect.macs
        for x in inputs:
            branch = branch_info(x, ctx, width=width, out=self.masks, depthwise=False, norm=norm)
            params, macs = params + branch.params, add_macs(macs, branch.macs)
        proto = conv_info(inputs[0], ctx, out=self.protos, kernel=3, padding=1, bias=bias, norm=norm)
        up = proto.shape
        doubled = Shape(self.protos, None if up.height is None else 2 * up.height,
                        None if up.width is None else 2 * up.width)
        upsample = LayerInfo(doubled, self.protos * self.protos * 4 + self.protos,
                             None if up.pixels is None else self.protos * self.protos * 4 * up.pixels)
        proto = proto.then(upsample).then(conv_info(doubled, ctx, out=self.protos, kernel=3, padding=1, bias=bias,
                                                    norm=norm))
        proto = proto.then(conv_info(doubled, ctx, out=self.masks, kernel=1, bias=bias, norm=norm))
        anchors = detect.shape.length
        return LayerInfo(Shape.of_length(4 + self.classes + self.masks, anchors), params + proto.params,
                         add_macs(macs, proto.macs))

    def build_inputs(self, inputs: list[Shape], ctx: Context) -> "nn.Module":
        from netspec.modules.heads import Segment as SegmentModule

        first = inputs[0].channels
        return SegmentModule([x.channels for x in inputs], classes=self.classes, masks=self.masks, protos=self.protos,
                             reg_max=self.reg_max, legacy=self.legacy, strides=level_strides(inputs, ctx),
                             norm=self.norm or ctx.norm, act=self.act or ctx.act,
                             widths=detect_widths(first, self.classes, self.reg_max),
                             mask_width=segment_width(first, self.masks))

    def build_units(self) -> int:
        return 48

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, classes=st.integers(1, 8), masks=st.integers(1, 4), protos=st.integers(1, 8),
                         reg_max=st.sampled_from([1, 2, 4]), legacy=st.booleans(),
                         norm=st.sampled_from([None, "batch", "none"]), act=st.sampled_from([None, "silu", "relu"]))
