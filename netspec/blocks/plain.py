"""``block: plain``: two 3x3 convs (conv + norm + act each; the second's act after the block), no shortcut.

Simonyan & Zisserman 2015 (arXiv:1409.1556); the "plain" baseline of He et al. 2016 (arXiv:1512.03385).
"""
from __future__ import annotations

from netspec.blocks.base import StageParams, register_block
from netspec.blocks.resnet import ResNetBlock


@register_block
class Plain(ResNetBlock):
    """Two 3x3 convs (the first strided, `groups` on it), no shortcut: VGG-style, ResNet's plain baseline."""

    name = "plain"
    paper = "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (arXiv:1512.03385)"
    shortcut = False

    def plan(self, stage: StageParams, stride: int, dilation: int) -> list[dict[str, int]]:
        mid = self.mid_channels(stage)
        return [
            dict(out=mid, kernel=3, stride=stride, padding=1, groups=stage.groups),
            dict(out=stage.out, kernel=3, stride=1, padding=1, groups=1),
        ]
