"""``block: basic``: ResNet-18/34's basic block, two 3x3 convs and a shortcut (netspec.blocks.resnet)."""
from __future__ import annotations

from netspec.blocks.base import StageParams, register_block
from netspec.blocks.resnet import ResNetBlock


@register_block
class Basic(ResNetBlock):
    """Two 3x3 convs (the first strided, `groups` on it) plus the input; 1x1 projection when the shape changes."""

    name = "basic"
    paper = "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (arXiv:1512.03385)"

    def plan(self, stage: StageParams, stride: int, dilation: int) -> list[dict[str, int]]:
        mid = self.mid_channels(stage)
        return [
            dict(out=mid, kernel=3, stride=stride, padding=1, groups=stage.groups),
            dict(out=stage.out, kernel=3, stride=1, padding=1, groups=1),
        ]
