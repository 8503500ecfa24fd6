"""``simam``: SimAM, parameter-free attention weighting every neuron by its energy."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, Strict

from netspec.layers.base import Attention, Context, Layer
from netspec.registry import register
from netspec.shapes import Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

Lambda = Annotated[float, Strict(), Field(gt=0, le=1e6, allow_inf_nan=False)]


@register
class SimAM(Attention):
    """SimAM: x * sigmoid(d / (4 (sum_hw(d) / (HW - 1) + lambda)) + 0.5) with d = (x - mean_hw(x))^2; no params.

    `e_lambda` defaults to the official module's 1e-4 (its ImageNet training configs pass 0.1). The official
    ResNets place it after the block's 3x3 conv, before that conv's BN: `stage: {attention: simam,
    attention_at: conv}`; plain `attention: simam` runs on the block's output before the addition, as SE does.
    """

    kind = "simam"
    paper = "Yang, Zhang, Li, Xie. SimAM: A Simple, Parameter-Free Attention Module for CNNs. ICML 2021"

    e_lambda: Lambda = 1e-4
    """regulariser lambda of the energy function (> 0)"""

    def check(self, x: Shape, ctx: Context) -> None:
        if x.pixels == 1:
            ctx.error(None, "needs a map larger than 1x1 (the energy divides by H*W - 1)")

    def count(self, channels: int, ctx: Context) -> int:
        return 0

    def macs_per_sample(self, x: Shape) -> int | None:
        return scale_macs(x.channels, x)  # the gating multiply

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.simam import SimAM as SimAMModule

        return SimAMModule(e_lambda=self.e_lambda)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and x.pixels != 1

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, e_lambda=st.sampled_from([1e-4, 1e-2, 0.1, 1.0]))
