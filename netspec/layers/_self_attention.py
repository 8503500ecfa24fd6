"""What the self-attention kinds that stand in for a conv share (``bottleneck_attn``, ``halo_attn``, ``lambda``).

Standalone, each maps (N, C, H, W) to itself (timm's module with ``dim_out = dim``, stride 1). As a stage's `conv`
it replaces the bottleneck's strided 3x3 conv as timm's ``SelfAttnBlock`` does: the attention (C -> C at the
stride), then ``post_attn``, the block's norm and activation.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from netspec.layers.base import AttentionConv, Context
from netspec.ops import norm_params
from netspec.scaling import make_divisible_nearest
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from torch import nn

STRIDES = (1, 2)
"""timm's self-attention layers downsample by 2 at most (an average pool or strided queries)."""


def head_dim(out_channels: int, heads: int, dim_head: int | None, qk_ratio: float) -> int:
    """Query/key features per head: ``dim_head``, else make_divisible(out * qk_ratio, 8) // heads (timm)."""
    return dim_head or make_divisible_nearest(out_channels * qk_ratio, 8) // heads


class SelfAttentionConv(AttentionConv):
    """Base: ``C_in -> C_out`` at stride 1 or 2; subclasses give ``check_size``, ``params_at``, ``attention_macs``,
    ``out_size`` and ``build_attention``."""

    heads: int
    multi_head_value: ClassVar[bool] = True
    """whether the value is split over the heads (out must be a multiple of `heads`)"""

    def check_channels(self, in_channels: int, out_channels: int, ctx: Context) -> None:
        if out_channels % self.heads:
            ctx.error("heads", f"must divide the output channels ({out_channels}): each head gets out / heads "
                               "value channels")

    def check_size(self, x: Shape, stride: int, ctx: Context) -> None:
        """Report sizes that do not fit (divisibility, a fixed position table) on ``ctx``."""

    def out_size(self, size: int | None, stride: int) -> int | None:
        """Output height or width at ``stride``: a 2x2 average pool in ceil mode, (size + 1) // 2 as the block's
        strided 1x1 shortcut (timm's floor-mode pool equals it on even sizes; on odd ones timm's block fails)."""
        return None if size is None else (size if stride == 1 else (size + 1) // 2)

    def check(self, x: Shape, ctx: Context) -> None:
        self.check_channels(x.channels, x.channels, ctx)
        self.check_size(x, 1, ctx)

    def params_at(self, x: Shape, out: int) -> int:
        """Learnable parameters of the attention on input ``x`` with ``out`` channels (tables may need the size)."""
        raise NotImplementedError

    def attention_macs(self, x: Shape, out: int, stride: int) -> int | None:
        """MACs per sample on input ``x`` with ``out`` channels at ``stride`` (``None`` when H, W are unknown)."""
        raise NotImplementedError

    def params_for(self, in_channels: int, out_channels: int) -> int:
        return self.params_at(Shape(in_channels, None, None), out_channels)

    def macs_for(self, in_channels: int, y: Shape) -> int | None:
        return None

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if x.flat:
            raise ctx.invalid(None, f"{self.kind} needs a feature map (N, C, H, W), got {x}")
        self.check(x, ctx)
        return LayerInfo(x, self.params_at(x, x.channels), self.attention_macs(x, x.channels, 1))

    def block_conv_info(self, x: Shape, ctx: Context, *, out: int, stride: int) -> LayerInfo:
        if x.flat:
            raise ctx.invalid(None, f"{self.kind} needs a feature map (N, C, H, W), got {x}")
        if stride not in STRIDES:
            raise ctx.invalid(None, f"{self.kind} downsamples by 1 or 2 only (timm's self-attention layers), "
                                    f"the block asks for stride {stride}")
        self.check_channels(x.channels, out, ctx)
        self.check_size(x, stride, ctx)
        y = Shape(out, self.out_size(x.height, stride), self.out_size(x.width, stride))
        params = self.params_at(x, out) + norm_params(ctx.norm, out)  # timm's post_attn norm + act
        return LayerInfo(y, params, self.attention_macs(x, out, stride))

    def build_attention(self, x: Shape, *, out: int, stride: int) -> "nn.Module":
        raise NotImplementedError

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        return self.build_attention(x, out=x.channels, stride=1)

    def build_block_conv(self, x: Shape, ctx: Context, *, out: int, stride: int) -> "nn.Module":
        from collections import OrderedDict

        from torch import nn

        from netspec.ops import make_act, make_norm

        parts: list[tuple[str, nn.Module]] = [("attention", self.build_attention(x, out=out, stride=stride))]
        if ctx.norm != "none":
            parts.append(("norm", make_norm(ctx.norm, out)))
        if ctx.act != "none":
            parts.append(("act", make_act(ctx.act)))
        return nn.Sequential(OrderedDict(parts))
