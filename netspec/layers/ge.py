"""``ge``: Gather-Excite, a gather of spatial extent E (or global) and an excite gate upsampled back."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field, Strict

from netspec.layers.base import Attention, Context, Flag, Layer, PositiveInt
from netspec.registry import register
from netspec.shapes import Shape, conv_out_size

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


def _extent(value: int) -> int:
    if value != 0 and value & (value - 1):
        raise ValueError("must be 0 (global) or a power of two (2, 4, 8, ...)")
    return value


Extent = Annotated[int, Strict(), Field(ge=0, le=64), AfterValidator(_extent)]


@register
class GE(Attention):
    """Gather-Excite: gather context over an extent E (or globally), excite with an MLP, upsample, sigmoid gate.

    Gather: the global mean at `extent` 0; else an average pool of window 2E-1, stride E, or with
    `extra_params` log2(E) depthwise 3x3 stride-2 convs + BN, ReLU between. Excite: an MLP C->rd->C (1x1 convs
    with bias, ReLU; rd = round(C / `reduction`)), upsampled (nearest) to H x W.

    The authors' code is Lua Torch (hujie-frank/GENet); this follows timm's `GatherExcite`, the PyTorch
    reference. Params: 2 C rd + rd + C with the MLP, plus 11 C per depthwise conv + BN with `extra_params`.
    `extent: 0` without extra params is SE with rd rounded to the nearest integer.
    """

    kind = "ge"
    paper = ("Hu, Shen, Albanie, Sun, Vedaldi. Gather-Excite: Exploiting Feature Context in Convolutional "
             "Neural Networks. NeurIPS 2018 (arXiv:1810.12348)")

    extent: Extent = 0
    """gather extent E: 0 for global, else a power of two (the gathered map is about H/E x W/E)"""
    extra_params: Flag = False
    """gather with log2(E) depthwise 3x3 stride-2 convs + BN (GE-theta) instead of average pooling (GE-theta-)"""
    mlp: Flag = True
    """excite with the MLP C->rd->C (GE-theta+ / timm's use_mlp); false gates with the gathered map itself"""
    reduction: PositiveInt = 16
    """reduction ratio r of the MLP: rd = round(C / r), at least 1 (any r)"""

    def hidden(self, channels: int) -> int:
        return max(1, int(channels / self.reduction + 0.5))

    def steps(self) -> int:
        return int(math.log2(self.extent)) if self.extra_params and self.extent else 0

    def gathered_sizes(self, x: Shape) -> list[tuple[int, int]]:
        """(h, w) after each gather step: the depthwise convs' outputs, or the one pooled map."""
        assert x.height is not None and x.width is not None
        size = (x.height, x.width)
        if self.extent == 0:
            return [(1, 1)]
        if not self.extra_params:
            kernel = 2 * self.extent - 1
            return [tuple(conv_out_size(s, kernel=kernel, stride=self.extent, padding=kernel // 2) for s in size)]  # type: ignore[list-item]
        sizes = []
        for _ in range(self.steps()):
            size = tuple(conv_out_size(s, kernel=3, stride=2, padding=1) for s in size)  # type: ignore[assignment]
            sizes.append(size)
        return sizes

    def check(self, x: Shape, ctx: Context) -> None:
        if self.extra_params and self.extent == 0:
            ctx.error("extra_params", "needs extent >= 2: a global gather with params needs a fixed feature size, "
                                      "which timm's GatherExcite pads so that it is not global")

    def count(self, channels: int, ctx: Context) -> int:
        mlp = 2 * channels * self.hidden(channels) + self.hidden(channels) + channels if self.mlp else 0
        return self.steps() * 11 * channels + mlp  # depthwise 3x3 without bias + BN

    def macs_per_sample(self, x: Shape) -> int | None:
        pixels = x.pixels
        if pixels is None:
            return None
        sizes = self.gathered_sizes(x)
        gather = sum(9 * x.channels * h * w for h, w in sizes) if self.steps() else 0
        h, w = sizes[-1]
        excite = 2 * x.channels * self.hidden(x.channels) * h * w if self.mlp else 0
        return gather + excite + x.channels * pixels

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.ge import GatherExcite

        return GatherExcite(x.channels, self.hidden(x.channels) if self.mlp else None, extent=self.extent,
                            extra_params=self.extra_params)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        @st.composite
        def layers(draw: st.DrawFn) -> GE:
            extent = draw(st.sampled_from([0, 2, 4, 8]))
            return cls(extent=extent, extra_params=extent > 0 and draw(st.booleans()), mlp=draw(st.booleans()),
                       reduction=draw(st.integers(1, x.channels)))

        return layers()
