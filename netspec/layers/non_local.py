"""``nonlocal``: the Non-local block, embedded Gaussian version (file named ``non_local``: ``nonlocal`` is a keyword)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from netspec.layers._timm_rules import timm_divisible
from netspec.layers.base import Attention, Context, Flag, Layer, PositiveInt
from netspec.ops import NormName, norm_params, norm_problem
from netspec.registry import register
from netspec.scaling import Channels
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class NonLocal(Attention):
    """Non-local block: z = x + BN(W·y), y = softmax(θ(x)ᵀφ(x))·g(x); θ φ g W 1x1 convs with bias, identity at init.

    `inter` channels default to C/`reduction` (C/2). The BN after W starts with weight and bias 0 (`norm: none`
    drops it and zero-initialises W instead). Variants, off by default as in the paper's formulation (the released
    video-nonlocal-net configs turn both on): `scale: true` multiplies the logits by 1/sqrt(inter); `subsample:
    true` max-pools the input of φ and g 2x2 (a quarter of the keys; needs H, W >= 2). Memory-efficient attention:
    the HWxHW matrix is never whole. timm's NonLocalAttn exactly (``timm:nl``): `{reduction: 8, rounding: timm,
    scale: true, scale_by: channels}`.
    """

    kind = "nonlocal"
    paper = "Wang, Girshick, Gupta, He. Non-local Neural Networks. CVPR 2018 (arXiv:1711.07971)"

    reduction: PositiveInt = 2
    """θ, φ, g have max(C // reduction, 1) channels (paper: C/2); set this or `inter`, not both"""
    inter: Channels | None = None
    """θ, φ, g channels, instead of C // reduction"""
    scale: Flag = False
    """multiply the logits by 1/sqrt(inter) (released video models, Transformer-style ports); paper: off"""
    subsample: Flag = False
    """max-pool 2x2 before φ and g (the subsampling trick of the paper and released code; needs H, W >= 2); default off"""
    norm: NormName = "batch"
    """norm after W, weight and bias zero-initialised (none: W itself starts at zero); not the spec's defaults"""
    rounding: Literal["floor", "timm"] = "floor"
    """without `inter`: max(C // reduction, 1), or timm's make_divisible(C / reduction, 8) (a multiple of 8)"""
    scale_by: Literal["inter", "channels"] = "inter"
    """with `scale`: the logits times inter^-0.5, or C^-0.5 of the input channels (timm's NonLocalAttn)"""

    def hidden(self, channels: int) -> int:
        """θ/φ/g channels: `inter`, else max(C // reduction, 1) (official: C/2) or timm's multiple of 8."""
        if self.inter is not None:
            return self.inter
        if self.rounding == "timm":
            return timm_divisible(channels / self.reduction, 8)
        return max(channels // self.reduction, 1)

    def check(self, x: Shape, ctx: Context) -> None:
        if self.inter is not None and "reduction" in self.model_fields_set:
            ctx.error("inter", "give `reduction` or `inter`, not both")
        elif self.inter is None and self.reduction > x.channels:
            ctx.error("reduction", f"must be <= {x.channels} (the input has {x.channels} channels)")
        problem = norm_problem(self.norm, x.height, x.width)
        if problem:
            ctx.error("norm", problem)
        if self.subsample:
            small = [size for size in (x.height, x.width) if size is not None and size < 2]
            if small:
                ctx.error("subsample", f"max-pooling 2x2 needs a map of at least 2x2, the input is {x.height}x{x.width}")

    def keys(self, x: Shape) -> int | None:
        """Positions φ and g see: H·W, or ⌊H/2⌋·⌊W/2⌋ when subsampled."""
        if x.height is None or x.width is None:
            return None
        return (x.height // 2) * (x.width // 2) if self.subsample else x.height * x.width

    def count(self, channels: int, ctx: Context) -> int:
        inter = self.hidden(channels)
        return 3 * (channels * inter + inter) + inter * channels + channels + norm_params(self.norm, channels)

    def macs_per_sample(self, x: Shape) -> int | None:
        pixels, keys = x.pixels, self.keys(x)
        if pixels is None or keys is None:
            return None
        channels, inter = x.channels, self.hidden(x.channels)
        projections = 2 * pixels * channels * inter + 2 * keys * channels * inter  # θ and W; φ and g
        return projections + 2 * pixels * keys * inter  # θᵀφ and the weighted sum of g

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.non_local import NonLocal2d

        return NonLocal2d(x.channels, self.hidden(x.channels), scale=self.scale, subsample=self.subsample,
                          norm=self.norm, scale_dim=x.channels if self.scale_by == "channels" else None)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        poolable = x.height is not None and x.width is not None and min(x.height, x.width) >= 2
        shared = dict(
            scale=st.booleans(),
            subsample=st.booleans() if poolable else st.just(False),
            norm=st.sampled_from(["batch", "none"]),
            scale_by=st.sampled_from(["inter", "channels"]),
        )
        return st.one_of(
            st.builds(cls, reduction=st.integers(1, x.channels), rounding=st.sampled_from(["floor", "timm"]),
                      **shared),
            st.builds(cls, inter=st.integers(1, 2 * x.channels), **shared),
        )
