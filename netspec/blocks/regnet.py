"""``block: regnet``: RegNet's X/Y block (Radosavovic et al. 2020, arXiv:2003.13678), as timm's ``regnet.py``.

A ResNet bottleneck with the design space's knobs: 1x1 conv to `width` channels (RegNet's bottleneck ratio 1:
default the stage's `out`), a 3x3 group conv carrying the stride whose groups hold `group_width` channels each,
the stage's `attention` after it (RegNetY: `se: {reduction: 4, base: block_input}`, a squeeze of a quarter of the
block's input channels), a 1x1 conv to `out` without act, a 1x1 conv + norm projection when the shape changes,
the addition, then the act. Children in timm's order (conv1, conv2, attention as timm's se, conv3, shortcut).
"""
from __future__ import annotations

from typing import Any

from netspec.blocks.base import BlockParams, StageParams, register_block
from netspec.blocks.resnet import ResNetBlock
from netspec.layers.base import Context, PositiveInt
from netspec.shapes import Shape


class RegNetParams(BlockParams):
    """The params only the regnet block has."""

    group_width: PositiveInt | None = None
    """channels in each group of the 3x3 group conv (groups = width / group_width; default one group)"""


@register_block
class RegNet(ResNetBlock):
    """1x1 to `width` (default out) -> 3x3 group conv (`group_width` channels a group, stride) -> attention -> 1x1."""

    name = "regnet"
    paper = "Radosavovic et al. Designing Network Design Spaces. CVPR 2020 (arXiv:2003.13678)"
    drop_path_to_last = True  # timm's regnet.py: linspace(0, drop_path_rate, sum(depths))
    options = frozenset({"width", "attention"})
    Params = RegNetParams
    convs = 3
    attention_in_body = 1

    def check(self, stage: StageParams, ctx: Context) -> None:
        mid = self.mid_channels(stage)
        if stage.group_width is not None and mid % stage.group_width:
            ctx.error("group_width", f"must divide the block's width ({mid} channels)")

    def plan(self, stage: StageParams, stride: int, dilation: int) -> list[dict[str, int]]:
        mid = self.mid_channels(stage)
        divides = stage.group_width is not None and mid % stage.group_width == 0  # else reported by check
        groups = mid // stage.group_width if divides else 1  # type: ignore[operator]
        return [
            dict(out=mid, kernel=1, stride=1, padding=0, groups=1),
            dict(out=mid, kernel=3, stride=stride, padding=1, groups=groups),
            dict(out=stage.out, kernel=1, stride=1, padding=0, groups=1),
        ]

    def attended(self, stage: StageParams, out: Shape) -> Shape | None:
        return Shape(self.mid_channels(stage), out.height, out.width)

    def draw(self, draw: Any, stage: type[Any], x: Shape) -> StageParams:
        from hypothesis import strategies as st

        from netspec.parsing import kinds_of
        from netspec.registry import KINDS
        from netspec.shapes import conv_out_size

        group_width = draw(st.sampled_from([None, 1, 2, 4]))
        width = (group_width or 1) * draw(st.integers(1, 4))
        out = draw(st.integers(1, 16))
        stride = draw(st.sampled_from([1, 2]))
        size = [conv_out_size(s, kernel=3, stride=stride, padding=1) for s in (x.height, x.width)]
        after = Shape(width, size[0], size[1])
        candidates = [KINDS[k] for k in kinds_of("attention") if KINDS[k].accepts(after)]
        attention = draw(draw(st.sampled_from(candidates)).strategy(after)) if candidates and draw(st.booleans()) else None
        return stage(block="regnet", out=out, width=width, group_width=group_width, depth=draw(st.integers(1, 2)),
                     stride=stride, attention=attention)
