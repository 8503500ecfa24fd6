"""``layernorm``: LayerNorm over the channels, on a feature map (N, C, H, W) or a flat (N, C) tensor."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, Strict

from netspec.layers.base import Context, Layer
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class LayerNorm(Layer):
    """LayerNorm over C at every position (timm's LayerNorm2d; on (N, C) nn.LayerNorm): 2C params.

    ConvNeXt normalises this way before each downsampling conv and in its head after the global pool; the same
    norm after a conv is `norm: layer` on that conv.
    """

    kind = "layernorm"
    paper = "Ba, Kiros, Hinton. Layer Normalization. 2016 (arXiv:1607.06450); ConvNeXt (arXiv:2201.03545)"

    eps: Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)] = 1e-6
    """added to the variance (timm's ConvNeXt: 1e-6)"""

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        return LayerInfo(x, 2 * x.channels, 0)  # like the norms inside conv-like kinds, its MACs are not counted

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.norm import LayerNorm2d

        return LayerNorm2d(x.channels, eps=self.eps)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, eps=st.sampled_from([1e-6, 1e-5]))
