"""``conv``: a 2-D convolution followed by the default (or given) norm and activation."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator

from netspec.layers.base import Context, Flag, Layer, NonNegativeInt, PositiveInt
from netspec.ops import ActName, NormName, norm_params, norm_problem
from netspec.registry import register
from netspec.scaling import Channels
from netspec.shapes import MAX_COUNT, LayerInfo, Shape, conv_out_size, fitting_kernels, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


def _padding(value: Any) -> Any:
    """One message for a `padding` that is neither a whole number >= 0 nor `same` (not one per alternative)."""
    if value is None or value == "same" or (type(value) is int and 0 <= value <= MAX_COUNT):
        return value
    if type(value) is int and value > MAX_COUNT:
        raise ValueError(f"input should be at most {MAX_COUNT}")
    raise ValueError("input should be a whole number >= 0 (zeros on each side) or 'same' (TensorFlow's SAME)")


Padding = Annotated[NonNegativeInt | Literal["same"] | None, BeforeValidator(_padding)]
"""A conv's padding: zeros on each side, ``same``, or ``None`` for the kernel's default."""


def conv_info(
    x: Shape,
    ctx: Context,
    *,
    out: int,
    kernel: int,
    stride: int = 1,
    padding: "int | str" = 0,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = False,
    norm: str = "none",
    blame: str | None = None,
) -> LayerInfo:
    """Shape rule of conv (+ norm): output shape, parameters, MACs. Shared by every kind made of convs.

    Problems are reported on ``ctx``; ``blame`` names the param to point at when the map shrinks below 1x1 (one the
    user wrote; ``None``: the layer itself).
    """
    if x.flat:
        raise ctx.invalid(None, f"a convolution needs a feature map (N, C, H, W), got {x}: remove the pool/flatten before it")
    if x.channels % groups or out % groups:
        ctx.error("groups", f"groups={groups} must divide the input channels ({x.channels}) and the output channels ({out})")
    if padding == "same":  # TensorFlow's SAME: ceil(size / stride), padded as needed (never shrinks below 1)
        height, width = (None if size is None else -(-size // stride) for size in (x.height, x.width))
    else:
        height, width = (
            conv_out_size(size, kernel=kernel, stride=stride, padding=int(padding), dilation=dilation)
            for size in (x.height, x.width)
        )
    if (height is not None and height < 1) or (width is not None and width < 1):
        raise ctx.invalid(
            blame,
            f"the {x.height}x{x.width} map would shrink to {height}x{width} "
            f"(kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation})",
        )
    y = Shape(out, height, width)
    problem = norm_problem(norm, height, width)
    if problem:
        ctx.error("norm", problem)
    weights = (x.channels // groups) * kernel * kernel * out
    params = weights + (out if bias else 0) + norm_params(norm, out)
    return LayerInfo(y, params, scale_macs(weights, y))


def same_padding(kernel: int, dilation: int = 1) -> int:
    """Padding that keeps the size at stride 1 for odd kernels: ``(kernel - 1) // 2 * dilation``."""
    return (kernel - 1) // 2 * dilation


@register
class Conv(Layer):
    """2-D convolution -> norm -> activation (norm and act default to the spec's `defaults`)."""

    kind = "conv"

    out: Channels
    kernel: PositiveInt = 3
    stride: PositiveInt = 1
    padding: Padding = None
    """zero padding on each side (default (kernel - 1) // 2 * dilation); `same`: TensorFlow's SAME padding, output
    ceil(size / stride), the extra pixel right/bottom when uneven (timm's tf_ models, Conv2dSame)"""
    dilation: PositiveInt = 1
    groups: PositiveInt = 1
    bias: Flag | None = None
    norm: NormName | None = None
    act: ActName | None = None
    widen_only: Flag = False
    """`scale.width` below 1 leaves `out` as written (torchvision MobileNetV2's last channel: 1280 * max(1, width))"""

    def resolved(self, ctx: Context) -> dict[str, object]:
        norm = self.norm or ctx.norm
        return dict(
            out=self.out,
            kernel=self.kernel,
            stride=self.stride,
            padding=same_padding(self.kernel, self.dilation) if self.padding is None else self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=(norm == "none") if self.bias is None else self.bias,
            norm=norm,
        )

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        # A map shrinks below 1x1 when the (dilated) kernel outgrows the padded map, never because of the stride:
        # blame the first of these the user wrote, else the layer.
        blame = next((name for name in ("padding", "kernel", "dilation") if name in self.model_fields_set), None)
        return conv_info(x, ctx, **self.resolved(ctx), blame=blame)  # type: ignore[arg-type]

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.conv import ConvNormAct

        params = self.resolved(ctx)
        out = params.pop("out")
        return ConvNormAct(x.channels, out, act=self.act or ctx.act, **params)  # type: ignore[arg-type]

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(
            cls,
            out=st.integers(1, 24),
            kernel=st.sampled_from(fitting_kernels(x, (1, 3, 5))),
            stride=st.sampled_from([1, 2]),
            padding=st.sampled_from([None, None, "same"]),  # TF's SAME: any kernel fits
            act=st.sampled_from([None, "relu", "silu", "none"]),
            norm=st.sampled_from([None, "batch", "none"]),
        )
