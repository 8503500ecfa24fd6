"""``detect``: the anchor-free YOLO detection head (Ultralytics ``Detect``: YOLOv5u, YOLOv8, YOLO11)."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from netspec.layers.base import Context, Flag, Layer, PositiveInt, describe_inputs
from netspec.layers.conv import conv_info
from netspec.ops import ActName, NormName
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

MAX_CLASSES = 1 << 20


def detect_widths(first: int, classes: int, reg_max: int) -> tuple[int, int]:
    """Ultralytics' branch widths from the first level's channels: box c2 = max(16, C/4, 4·reg_max), class
    c3 = max(C, min(classes, 100))."""
    return max(16, first // 4, 4 * reg_max), max(first, min(classes, 100))


def segment_width(first: int, masks: int) -> int:
    """Ultralytics' mask-coefficient branch width (Segment's cv4): max(C / 4, masks)."""
    return max(first // 4, masks)


def level_strides(inputs: list[Shape], ctx: Context) -> tuple[float, ...]:
    """Each level's stride: the network input's height over the level's (Ultralytics measures the same with a
    256 x 256 dummy forward). Outside a spec (a head built alone) the largest level counts as stride 1."""
    network = ctx.input
    if network is not None and network.height is not None and all(x.height for x in inputs):
        return tuple(network.height / x.height for x in inputs)  # type: ignore[operator]
    largest = max((x.height or 1) for x in inputs)
    return tuple(largest / (x.height or largest) for x in inputs)


def branch_info(x: Shape, ctx: Context, *, width: int, out: int, depthwise: bool, norm: str) -> LayerInfo:
    """One level's branch: two 3x3 convs (or two depthwise 3x3 + 1x1 pairs) to ``width``, a 1x1 conv with bias."""
    bias = norm == "none"
    if depthwise:
        total = conv_info(x, ctx, out=x.channels, kernel=3, padding=1, groups=x.channels, bias=bias, norm=norm)
        total = total.then(conv_info(total.shape, ctx, out=width, kernel=1, bias=bias, norm=norm))
        total = total.then(conv_info(total.shape, ctx, out=width, kernel=3, padding=1, groups=width, bias=bias,
                                     norm=norm))
        total = total.then(conv_info(total.shape, ctx, out=width, kernel=1, bias=bias, norm=norm))
    else:
        total = conv_info(x, ctx, out=width, kernel=3, padding=1, bias=bias, norm=norm)
        total = total.then(conv_info(total.shape, ctx, out=width, kernel=3, padding=1, bias=bias, norm=norm))
    return total.then(conv_info(total.shape, ctx, out=out, kernel=1, bias=True))


def head_info(inputs: list[Shape], ctx: Context, *, classes: int, reg_max: int, legacy: bool, norm: str,
              kind: str) -> tuple[LayerInfo, int | None]:
    """Params and MACs of Detect's branches and DFL over every level; and A, the anchor points (None if unsized)."""
    maps = [x for x in inputs if not x.spatial]
    if maps:
        raise ctx.invalid(None, f"{kind} reads feature maps (N, C, H, W): {describe_inputs(inputs, ctx)}")
    box_width, class_width = detect_widths(inputs[0].channels, classes, reg_max)
    params, macs = 0, 0
    for x in inputs:
        box = branch_info(x, ctx, width=box_width, out=4 * reg_max, depthwise=False, norm=norm)
        cls = branch_info(x, ctx, width=class_width, out=classes, depthwise=not legacy, norm=norm)
        params += box.params + cls.params
        macs = None if macs is None or box.macs is None or cls.macs is None else macs + box.macs + cls.macs
    anchors = None if any(x.pixels is None for x in inputs) else sum(x.pixels for x in inputs)  # type: ignore[misc]
    if reg_max > 1:  # DFL: a fixed 1x1 conv of reg_max weights, 4 box sides per anchor
        params += reg_max
        macs = None if macs is None or anchors is None else macs + 4 * reg_max * anchors
    macs = None if macs is None or anchors is None else macs + 4 * anchors  # boxes times their stride
    if ctx.input is not None and not ctx.input.sized:
        raise ctx.invalid(None, f"{kind} needs the spec's input.size: its strides are the input size over each "
                                "level's size")
    return LayerInfo(Shape.of_length(4 + classes, anchors), params, macs), anchors


@register
class Detect(Layer):
    """YOLO detection head on `from: [p3, p4, p5]` (any number of levels): per level a box branch (3x3, 3x3, 1x1 to
    4·reg_max) and a class branch (3x3, 3x3, 1x1 to classes; YOLO11's `legacy: false`: depthwise 3x3 + 1x1 twice),
    then DFL.

    Widths from the first level's C: box max(16, C/4, 4·reg_max), class max(C, min(classes, 100)). Strides are the
    input size over each level's; biases start as Ultralytics' (box 2.0, class log(5 / classes / (640/stride)²)).
    Training mode returns `{boxes: (N, 4·reg_max, A), scores: (N, classes, A), feats: [levels]}` (Ultralytics 8.4);
    eval mode (N, 4 + classes, A): xywh boxes in input pixels and sigmoid scores, A anchor points over all levels.
    `classes` and `reg_max` never scale.
    """

    kind = "detect"
    paper = "Jocher, Chaurasia, Qiu. Ultralytics YOLOv8 (2023), ultralytics/nn/modules/head.py Detect"
    arity: ClassVar[tuple[int, int | None]] = (1, None)

    classes: PositiveInt
    """number of classes (Ultralytics' nc)"""
    reg_max: PositiveInt = 16
    """DFL bins per box side (1: boxes regressed directly, no DFL)"""
    legacy: Flag = True
    """class branch of two 3x3 convs (YOLOv3/v5/v8); false: two depthwise 3x3 + 1x1 pairs (YOLO11)"""
    norm: NormName | None = None
    act: ActName | None = None

    def infer_inputs(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        if self.classes > MAX_CLASSES:
            raise ctx.invalid("classes", f"at most {MAX_CLASSES:,}, got {self.classes:,}")
        if self.reg_max > 1024:
            raise ctx.invalid("reg_max", f"at most 1024 bins, got {self.reg_max}")
        info, _ = head_info(inputs, ctx, classes=self.classes, reg_max=self.reg_max, legacy=self.legacy,
                            norm=self.norm or ctx.norm, kind=self.kind)
        return info

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        return self.infer_inputs([x], ctx)

    def build_inputs(self, inputs: list[Shape], ctx: Context) -> "nn.Module":
        from netspec.modules.heads import Detect as DetectModule

        return DetectModule([x.channels for x in inputs], classes=self.classes, reg_max=self.reg_max,
                            legacy=self.legacy, strides=level_strides(inputs, ctx), norm=self.norm or ctx.norm,
                            act=self.act or ctx.act,
                            widths=detect_widths(inputs[0].channels, self.classes, self.reg_max))

    def build_units(self) -> int:
        return 32

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def companions(cls, x: Shape) -> "SearchStrategy[list[Shape]]":
        from hypothesis import strategies as st

        return st.lists(st.integers(1, 16).map(lambda c: Shape(c, x.height, x.width)), max_size=2)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, classes=st.integers(1, 8), reg_max=st.sampled_from([1, 2, 4]), legacy=st.booleans(),
                         norm=st.sampled_from([None, "batch", "none"]), act=st.sampled_from([None, "silu", "relu"]))
