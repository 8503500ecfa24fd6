"""``block: convnext``: ConvNeXt's block (Liu et al. 2022, arXiv:2201.03545) and V2's with GRN (arXiv:2301.00808).

A depthwise `kernel` x `kernel` conv (default 7, with bias), LayerNorm over the channels, an MLP of two linear
layers C -> `expand` x C -> C (default 4) with the act (GELU in ConvNeXt) between them, the stage's `attention`
(after the MLP, on (N, C, H, W)), the layer scale gamma (`ls_init`, default 1e-6), drop path, and the input added.
`grn: true` is ConvNeXt V2: Global Response Norm after the act, and no layer scale unless `ls_init` is given.
The block keeps its input's shape: ConvNeXt downsamples between stages with `layernorm` + a 2x2 stride-2 `conv`.
Layout as timm's ``ConvNeXtBlock`` (netspec.modules.convnext), so timm's weights load by position.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, Strict

from netspec.blocks.base import Block, BlockParams, Site, StageParams, register_block
from netspec.layers.base import Context, Flag
from netspec.parsing import kinds_of
from netspec.shapes import LayerInfo, Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn
    from torch import nn

DEFAULT_KERNEL = 7
DEFAULT_EXPAND = 4.0
DEFAULT_LS_INIT = 1e-6


def layer_scale(stage: StageParams) -> float | None:
    """gamma's initial value: `ls_init` as written (0: none), else 1e-6 for V1 and none for V2 (`grn`)."""
    if stage.ls_init is not None:
        return stage.ls_init or None
    return None if stage.grn else DEFAULT_LS_INIT


class ConvNeXtParams(BlockParams):
    """The params only the convnext block has."""

    ls_init: Annotated[float, Strict(), Field(ge=0, le=1e6, allow_inf_nan=False)] | None = None
    """initial value of the layer scale gamma (default 1e-6; with `grn` none); 0: no layer scale"""
    grn: Flag = False
    """ConvNeXt V2's Global Response Norm in the MLP (and no layer scale unless `ls_init` is given)"""


@register_block
class ConvNeXt(Block):
    """Depthwise 7x7 conv, LayerNorm, MLP (4C, GELU, [GRN]), attention, layer scale, plus the input."""

    name = "convnext"
    paper = "Liu et al. A ConvNet for the 2020s. CVPR 2022 (arXiv:2201.03545)"
    drop_path_to_last = True  # timm's convnext.py: linspace(0, drop_path_rate, sum(depths))
    options = frozenset({"kernel", "expand", "attention"})
    Params = ConvNeXtParams

    def hidden(self, stage: StageParams, channels: int) -> int:
        return max(int((DEFAULT_EXPAND if stage.expand is None else stage.expand) * channels), 1)

    def units(self, stage: StageParams) -> int:
        return 8 + (stage.attention.build_units() if stage.attention else 0)

    def infer(self, stage: StageParams, x: Shape, ctx: Context, site: Site) -> LayerInfo:
        if x.flat:
            raise ctx.invalid(None, f"a convnext block needs a feature map (N, C, H, W), got {x}")
        if site.index == 0:
            if site.stride != 1:
                ctx.error("stride", "leave 1: a convnext block keeps its input's size; ConvNeXt downsamples before "
                                    "the stage with `layernorm` and `conv: {kernel: 2, stride: 2, padding: 0}`")
            if x.channels != stage.out:
                ctx.error("out", f"must equal the stage's input channels ({x.channels}): a convnext block keeps them; "
                                 "change them before the stage (ConvNeXt: `layernorm`, then a 2x2 stride-2 `conv`)")
            if site.norm != "layer":
                ctx.error("norm", f"a convnext block normalises with LayerNorm: set `norm: layer` (here or in "
                                  f"`defaults`), not {site.norm}")
        channels, hidden = x.channels, self.hidden(stage, x.channels)
        kernel = stage.kernel or DEFAULT_KERNEL
        params = channels * kernel * kernel + channels + 2 * channels + 2 * channels * hidden + hidden + channels
        params += (channels if layer_scale(stage) else 0) + (2 * hidden if stage.grn else 0)
        gating = (channels if layer_scale(stage) else 0) + (2 * hidden if stage.grn else 0)  # gamma * x; GRN's two
        total = LayerInfo(x, params, scale_macs(channels * kernel * kernel + 2 * channels * hidden + gating, x))
        if stage.attention is not None:
            at = replace(ctx, block_input=channels).at("attention", stage.attention.kind)
            info = stage.attention.checked_infer(x, at)
            total = LayerInfo(x, total.params + info.params, total.then(info).macs)
        return total

    def build(self, stage: StageParams, x: Shape, ctx: Context, site: Site) -> "nn.Module":
        from netspec.modules.convnext import ConvNeXtBlock

        attention = None
        if stage.attention is not None:
            at = replace(ctx, block_input=x.channels).at("attention", stage.attention.kind)
            attention = stage.attention.checked_build(x, at)
        return ConvNeXtBlock(x.channels, kernel=stage.kernel or DEFAULT_KERNEL, hidden=self.hidden(stage, x.channels),
                             act=site.act, grn=stage.grn, ls_init=layer_scale(stage), attention=attention,
                             drop_path=ctx.drop_rate(site.index, to_last=self.drop_path_to_last))

    def draw(self, draw: "DrawFn", stage: type[Any], x: Shape) -> StageParams:
        from hypothesis import strategies as st

        from netspec.registry import KINDS

        attention = None
        candidates = [KINDS[k] for k in kinds_of("attention") if KINDS[k].accepts(x)]
        if candidates and draw(st.booleans()):
            attention = draw(draw(st.sampled_from(candidates)).strategy(x))
        return stage(block="convnext", out=x.channels, depth=draw(st.integers(1, 3)), norm="layer",
                     act=draw(st.sampled_from(["gelu", "relu"])), kernel=draw(st.sampled_from([None, 3, 5])),
                     expand=draw(st.sampled_from([None, 1.0, 2.0])), grn=draw(st.booleans()),
                     ls_init=draw(st.sampled_from([None, 0.0, 0.5])), attention=attention)
