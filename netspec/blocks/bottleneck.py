"""``block: bottleneck``: ResNet-50's block, 1x1 -> 3x3 (stride, groups, dilation) -> 1x1 (netspec.blocks.resnet).

ResNeXt (Xie et al. 2017, arXiv:1611.05431) sets `width` and `groups`; DeepLab's dilated ResNets set `dilation`.
"""
from __future__ import annotations

from netspec.blocks.base import StageParams, register_block
from netspec.blocks.resnet import RESNET_OPTIONS, ResNetBlock


@register_block
class Bottleneck(ResNetBlock):
    """1x1 to `width` (default out/4) -> 3x3 (stride, groups, dilation) -> 1x1 to `out`, plus the input."""

    name = "bottleneck"
    paper = "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (arXiv:1512.03385)"
    options = RESNET_OPTIONS | {"dilation"}
    convs = 3
    replaced_position = 1

    def mid_channels(self, stage: StageParams) -> int:
        return stage.width if stage.width is not None else max(stage.out // 4, 1)

    def plan(self, stage: StageParams, stride: int, dilation: int) -> list[dict[str, int]]:
        mid = self.mid_channels(stage)
        return [
            dict(out=mid, kernel=1, stride=1, padding=0, groups=1),
            dict(out=mid, kernel=3, stride=stride, padding=dilation, dilation=dilation, groups=stage.groups),
            dict(out=stage.out, kernel=1, stride=1, padding=0, groups=1),
        ]
