"""Norm and activation names as data: one table each, shared by every conv-like kind (cf. timm ``create_act``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, Strict

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class NormRule:
    """A normalisation layer: the ``torch.nn`` class, its keyword arguments, learnable parameters per channel."""

    module: str | None
    params_per_channel: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    min_pixels: int = 1  # fewest positions per channel it can normalise (instance norm: statistics over H*W)


NORMS: dict[str, NormRule] = {
    "batch": NormRule("BatchNorm2d", 2),
    "instance": NormRule("InstanceNorm2d", 2, {"affine": True}, min_pixels=2),
    "none": NormRule(None, 0),
    "layer": NormRule("LayerNorm2d", 2, {"eps": 1e-6}),  # over the channels at each position (ConvNeXt, timm's eps)
}

ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "relu": ("ReLU", {"inplace": True}),
    "relu6": ("ReLU6", {"inplace": True}),
    "leaky_relu": ("LeakyReLU", {"negative_slope": 0.1, "inplace": True}),
    "silu": ("SiLU", {"inplace": True}),
    "swish": ("SiLU", {"inplace": True}),
    "gelu": ("GELU", {}),
    "hardswish": ("Hardswish", {}),
    "hardsigmoid": ("Hardsigmoid", {}),
    "mish": ("Mish", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "none": ("Identity", {}),
}

NormName = Literal[tuple(NORMS)]  # type: ignore[valid-type]
ActName = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]


NormEps = Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)]
NormMomentum = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]


def norm_params(name: str, channels: int) -> int:
    """Learnable parameters of norm ``name`` over ``channels`` channels (running stats are buffers)."""
    return NORMS[name].params_per_channel * channels


def norm_problem(name: str, height: int | None, width: int | None) -> str | None:
    """Why norm ``name`` cannot normalise ``height`` x ``width`` maps (instance norm on 1x1), else ``None``."""
    rule = NORMS[name]
    if height is None or width is None or height * width >= rule.min_pixels:
        return None
    return f"{name} norm needs at least {rule.min_pixels} positions per channel, the map is {height}x{width}"


def make_norm(name: str, channels: int) -> "nn.Module":
    from torch import nn

    from netspec.modules import norm

    rule = NORMS[name]
    if rule.module is None:
        return nn.Identity()
    module = getattr(nn, rule.module, None) or getattr(norm, rule.module)  # torch's own, else netspec's (LayerNorm2d)
    return module(channels, **rule.kwargs)


def make_act(name: str) -> "nn.Module":
    from torch import nn

    from netspec.modules import activation

    module, kwargs = ACTIVATIONS[name]
    # netspec's own where it has one (SiLU: in place only without autograd), else torch's
    return (getattr(activation, module, None) or getattr(nn, module))(**kwargs)


def set_norm_statistics(model: "nn.Module", *, eps: float | None, momentum: float | None) -> None:
    """Give every norm layer of ``model`` the spec-wide ``eps``/``momentum`` (``None``: keep each kind's own).

    As Ultralytics' ``initialize_weights`` and torchvision's ``norm_layer=partial(BatchNorm2d, eps=..., momentum=...)``:
    one setting for all the network's batch and instance norms.
    """
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.instancenorm import _InstanceNorm

    if eps is None and momentum is None:
        return
    for module in model.modules():
        if isinstance(module, (_BatchNorm, _InstanceNorm)):
            if eps is not None:
                module.eps = eps
            if momentum is not None:
                module.momentum = momentum
