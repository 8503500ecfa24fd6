"""A ``torch.nn.Module`` read back into a spec: ``netspec.from_module``, ``netspec import timm:NAME``.

The model is traced with ``torch.fx``; the block classes netspec knows (:data:`READERS`, keyed by the class's
module and name) are leaves, read by a small function each into netspec params: a residual or inverted block
into a one-block ``stage`` (consecutive blocks that agree on every param become one stage), an attention
module into the kind that computes the same function, a conv followed by its norm and activation into one
``conv``. Graph edges that skip entries become ``name:``/``from:``. Whatever cannot be mapped (a class netspec
does not know, an op no kind computes, a setting no param expresses) is an error naming the class and its
qualified name in the model; nothing half-converted is returned. Unless ``verify=False``, the spec is proven
before it is returned: built, its parameter count compared, the module's weights loaded with
``load_weights(strict=True)`` and one eval forward pass compared on a seeded input.
"""
from __future__ import annotations

import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netspec.api import build
from netspec.errors import Problem, SpecError
from netspec.importers.imported import Imported
from netspec.layers.base import Layer
from netspec.spec import Spec
from netspec.weights import (SHORTCUT_FIRST, class_key, flow_keys, load_weights,  # noqa: F401  (SHORTCUT_FIRST:
                             shortcut_first_blocks)  # it used to live here)

if TYPE_CHECKING:
    import torch
    from torch import fx, nn

DEFAULT_SIZE = 224
"""Square input side of the verification pass when neither ``input_size`` nor the model's config gives one."""
TOLERANCE = 1e-4
"""Largest output difference the verification accepts, relative to the output's largest magnitude (float32)."""


class ConversionError(SpecError):
    """The module cannot be read into a spec (or the spec does not reproduce it); ``.problems`` says why."""


def _fail(message: str, where: str | None = None) -> ConversionError:
    return ConversionError([Problem((), message, where)])


class Unmappable(Exception):
    """Raised by a reader: this module's settings have no netspec equivalent (the message says which)."""


# --- small readers ------------------------------------------------------------------------------------------


ACT_NAMES = {
    "relu": "relu", "relu6": "relu6", "silu": "silu", "swish": "silu", "hardswish": "hardswish",
    "hardsigmoid": "hardsigmoid", "gelu": "gelu", "sigmoid": "sigmoid", "tanh": "tanh", "mish": "mish",
    "identity": "none",
}
"""Activation classes (lowercased, underscores dropped; torch's and timm's alike) -> netspec act names."""


def act_name(module: "nn.Module | None") -> str:
    """The netspec name of an activation module (``None``: no activation)."""
    if module is None:
        return "none"
    name = type(module).__name__.lower().replace("_", "")
    if name == "leakyrelu" and math.isclose(module.negative_slope, 0.1):
        return "leaky_relu"
    if name not in ACT_NAMES:
        raise Unmappable(f"activation {type(module).__name__} has no netspec name (known: {', '.join(sorted(ACT_NAMES))})")
    return ACT_NAMES[name]


def _is(module: Any, *names: str) -> bool:
    return module is not None and type(module).__name__ in names


def _identity(module: Any) -> bool:
    return module is None or _is(module, "Identity")


def _conv(module: Any, what: str) -> "nn.Conv2d":
    from torch import nn

    if type(module) is not nn.Conv2d and not _tf_same(module):
        raise Unmappable(f"{what} is a {type(module).__name__}, not a plain Conv2d")
    if _tf_same(module) and module.padding[0] != 0:
        raise Unmappable(f"{what} pads twice (TensorFlow's SAME and {module.padding})")
    if module.padding_mode != "zeros" or len(set(module.kernel_size)) != 1 or len(set(module.stride)) != 1 \
            or len(set(module.padding)) != 1 or len(set(module.dilation)) != 1:
        raise Unmappable(f"{what} has non-square kernel/stride/padding/dilation or {module.padding_mode} padding")
    return module


def _tf_same(conv: Any) -> bool:
    """timm's ``Conv2dSame``: TensorFlow's SAME padding computed per input (the tf_ ports), netspec's `same`."""
    return class_key(conv) == "timm.layers.conv2d_same.Conv2dSame"


def _same(conv: "nn.Conv2d") -> bool:
    """Whether a conv pads (k-1)/2 * dilation, netspec's default (TensorFlow's SAME, netspec's `same`, too)."""
    return _tf_same(conv) or conv.padding[0] == (conv.kernel_size[0] - 1) // 2 * conv.dilation[0]


def _tf_padding(module: Any, params: dict[str, Any]) -> dict[str, Any]:
    """A block holding a ``Conv2dSame`` pads as TensorFlow: its stage's `padding: same` (netspec's SAME equals
    the symmetric (k - 1) / 2 at stride 1 with odd kernels, so the rest of a tf_ stage reads the same)."""
    if any(_tf_same(part) for part in module.modules()):
        params["padding"] = "same"
    return params


def _norm_act(module: Any, what: str) -> str:
    """A norm module (BatchNorm2d, or timm's BatchNormAct2d with its activation): the activation it applies."""
    from torch import nn

    if _is(module, "BatchNormAct2d"):
        if not _identity(getattr(module, "drop", None)):
            raise Unmappable(f"{what} has a drop layer")
        return act_name(module.act)
    if type(module) is nn.BatchNorm2d:
        return "none"
    raise Unmappable(f"{what} is a {type(module).__name__}, not a BatchNorm2d")


def _options(make: Callable[..., Layer], grid: Iterable[dict[str, Any]], fits: Callable[[Any], bool]) -> list[Layer]:
    """The layers ``make(**params)`` for each params in ``grid`` (in order) that ``fits``; duplicates dropped."""
    found: list[Layer] = []
    for params in grid:
        try:
            layer = make(**params)
        except SpecError:
            continue
        if fits(layer) and layer not in found:
            found.append(layer)
    return found


def _ratios(base: int, hidden: int) -> list[int]:
    """Reduction ratios r (exact divisors first) with base // r close to ``hidden``: the candidates to try."""
    if hidden < 1:
        return []
    exact = [base // hidden] if base % hidden == 0 else []
    near = [r for r in range(max(1, base // (hidden + 1)), base // hidden + 2) if r not in exact]
    common = [r for r in (16, 4, 8, 32, 2, 1) if r not in exact and r not in near]
    return exact + near + common


# --- attention modules: each returns the netspec layers (best first) that compute the same function ---------


@dataclass(frozen=True)
class Site:
    """Where an attention module sits: its channels, and the input channels of the block holding it."""

    channels: int
    block_input: int | None = None


def _se_options(fc1: Any, fc2: Any, act: Any, gate: Any, site: Site, *, prefer_block_input: bool) -> list[Layer]:
    from netspec.layers.base import Context
    from netspec.layers.se import SE

    hidden, channels = fc1.out_channels, site.channels
    if fc1.in_channels != channels or fc2.out_channels != channels or fc2.in_channels != hidden:
        raise Unmappable("its convs do not map C -> hidden -> C")
    if (fc1.bias is None) != (fc2.bias is None):
        raise Unmappable("one FC has a bias and the other not")
    gate_name, act_value = act_name(gate), act_name(act)
    if gate_name not in ("sigmoid", "hardsigmoid") or act_value not in ("relu", "silu"):
        raise Unmappable(f"gate {gate_name} / activation {act_value} (netspec's se: sigmoid|hardsigmoid, relu|silu)")
    ctx = Context(block_input=site.block_input)
    bases = ["block_input", "channels"] if prefer_block_input else ["channels", "block_input"]
    if site.block_input is None:
        bases = ["channels"]
    grid = [dict(reduction=r, base=base, divisor=divisor, gate=gate_name, act=act_value, bias=fc1.bias is not None)
            for base in bases for divisor in (None, 8)
            for r in _ratios(site.block_input if base == "block_input" else channels, hidden)]
    return _options(SE, grid, lambda layer: layer.hidden(channels, ctx) == hidden)


def read_se_module(module: Any, site: Site) -> list[Layer]:
    """timm ``SEModule`` (SENet)."""
    if getattr(module, "add_maxpool", False) or not _identity(getattr(module, "bn", None)):
        raise Unmappable("add_maxpool or a norm between the FCs (netspec's se has neither)")
    return _se_options(module.fc1, module.fc2, module.act, module.gate, site, prefer_block_input=False)


def read_squeeze_excite(module: Any, site: Site) -> list[Layer]:
    """timm ``SqueezeExcite`` (EfficientNet, MobileNetV3 blocks)."""
    return _se_options(module.conv_reduce, module.conv_expand, module.act1, module.gate, site, prefer_block_input=True)


def read_torchvision_se(module: Any, site: Site) -> list[Layer]:
    """torchvision ``SqueezeExcitation`` (MobileNetV3, EfficientNet)."""
    return _se_options(module.fc1, module.fc2, module.activation, module.scale_activation, site,
                       prefer_block_input=True)


def read_effective_se(module: Any, site: Site) -> list[Layer]:
    """timm ``EffectiveSEModule`` (VoVNet's eSE)."""
    from netspec.layers.ese import ESE

    if module.add_maxpool or act_name(module.gate) != "hardsigmoid":
        raise Unmappable("add_maxpool or a gate other than hard sigmoid (netspec's ese: hard sigmoid, no max pool)")
    return [ESE()]


def read_eca(module: Any, site: Site) -> list[Layer]:
    """timm ``EcaModule`` / ``CecaModule``: the kernel as built (the adaptive default where it gives the same)."""
    from netspec.layers.eca import ECA, adaptive_kernel

    if getattr(module, "conv2", None) is not None:  # use_mlp: ecam
        return read_timm_twin(module, site)
    if module.conv.bias is not None:
        raise Unmappable("a conv bias (netspec's eca: one bias-free Conv1d)")
    kernel = module.conv.kernel_size[0]
    circular = _is(module, "CecaModule")
    gate = act_name(module.gate)
    if gate not in ("sigmoid", "hardsigmoid"):
        raise Unmappable(f"gate {gate} (netspec's eca: sigmoid or hardsigmoid)")
    adaptive = site.channels > 0 and adaptive_kernel(site.channels) == kernel  # 0: standalone, channels unknown
    options = [ECA(kernel=None, circular=circular, gate=gate)] if adaptive else []
    return options + [ECA(kernel=kernel, circular=circular, gate=gate)]


def read_coord(module: Any, site: Site) -> list[Layer]:
    """timm ``CoordAttn``."""
    from netspec.layers.coord import Coord

    if act_name(module.act) != "hardswish" or act_name(module.gate) != "sigmoid":
        raise Unmappable("an activation other than hard swish or a gate other than sigmoid")
    hidden = module.conv1.out_channels
    _plain_bn(module.bn1, "bn1")
    bias = module.conv1.bias is not None
    grid = [dict(reduction=16, min_hidden=8, bias=bias, rounding="timm")]  # timm's defaults first
    grid += [dict(reduction=r, min_hidden=m, bias=bias, rounding=rounding)
             for rounding in ("floor", "timm") for r in _ratios(site.channels, hidden) + [32] for m in (8, hidden, 1)]
    return _options(Coord, grid, lambda layer: layer.hidden(site.channels) == hidden)


def _plain_bn(module: Any, what: str) -> float:
    """A BN without activation, with torch's eps (what netspec's norms use): its momentum."""
    if _norm_act(module, what) != "none" or module.eps != 1e-5 or not module.affine:
        raise Unmappable(f"{what} is not a plain affine BN with eps 1e-5")
    return module.momentum


def _checked_gate(module: Any, what: str, allowed: tuple[str, ...]) -> str:
    name = act_name(module)
    if name not in allowed:
        raise Unmappable(f"{what} {name} (netspec: {' or '.join(allowed)})")
    return name


def read_cbam(module: Any, site: Site) -> list[Layer]:
    """timm ``CbamModule``: ``cbam`` with timm's rounding, [mean, max] spatial pooling and its BN momentum."""
    from netspec.layers.cbam import CBAM

    channel, spatial = module.channel, module.spatial
    gate = _checked_gate(channel.gate, "the channel gate", ("sigmoid", "hardsigmoid"))
    if act_name(spatial.gate) != gate:
        raise Unmappable("its two gates differ (netspec's cbam: one gate for both)")
    act = _checked_gate(channel.act, "the MLP activation", ("relu", "silu"))
    if (channel.fc1.bias is None) != (channel.fc2.bias is None):
        raise Unmappable("one FC has a bias and the other not")
    conv = _conv(spatial.conv.conv, "spatial.conv.conv")
    if conv.bias is not None or not _same(conv) or conv.stride[0] != 1 or conv.dilation[0] != 1 \
            or conv.kernel_size[0] % 2 == 0:
        raise Unmappable("its spatial conv is not an odd 'same' conv without bias")
    momentum = _plain_bn(spatial.conv.bn, "spatial.conv.bn")
    hidden = channel.fc1.out_channels
    grid = [dict(reduction=r, rounding=rounding, mlp_bias=channel.fc1.bias is not None, kernel=conv.kernel_size[0],
                 gate=gate, act=act, order="mean_max", momentum=momentum)
            for rounding in ("timm", "floor") for r in [16] + _ratios(site.channels, hidden)]  # timm's r first
    return _options(CBAM, grid, lambda layer: layer.hidden(site.channels) == hidden)


def read_global_context(module: Any, site: Site) -> list[Layer]:
    """timm ``GlobalContext`` (``gc``: scale fusion, ``gca``: add fusion): ``gc`` with timm's rounding and
    LayerNorm2d."""
    from netspec.layers.gc import GC

    _checked_gate(module.gate, "the gate", ("sigmoid",))
    mlps = [mlp for mlp in (module.mlp_add, module.mlp_scale) if mlp is not None]
    if not mlps:
        raise Unmappable("neither fusion (netspec's gc adds, multiplies or both)")
    for mlp in mlps:
        if not _is(mlp.norm, "LayerNorm2d") or not mlp.norm.elementwise_affine or mlp.fc1.bias is None \
                or mlp.fc2.bias is None or act_name(mlp.act) != "relu" or mlp.drop.p != 0:
            raise Unmappable("its MLP is not fc1 (bias) + LayerNorm2d + ReLU + fc2 (bias)")
    eps, hidden = mlps[0].norm.eps, mlps[0].fc1.out_channels
    if any(mlp.norm.eps != eps or mlp.fc1.out_channels != hidden for mlp in mlps):
        raise Unmappable("its two MLPs differ in width or eps")
    fusion = "both" if len(mlps) == 2 else "add" if module.mlp_add is not None else "mul"
    pool = "avg" if module.conv_attn is None else "attention"
    grid = [dict(reduction=r, rounding=rounding, fusion=fusion, pool=pool, eps=eps, layout="timm")
            for rounding in ("timm", "floor") for r in [8] + _ratios(site.channels, hidden)]  # timm's r first
    return _options(GC, grid, lambda layer: layer.hidden(site.channels) == hidden)


def read_non_local(module: Any, site: Site) -> list[Layer]:
    """timm ``NonLocalAttn``: ``nonlocal`` with timm's width rule and its logits scaled by C^-0.5."""
    from netspec.layers.non_local import NonLocal

    if _plain_bn(module.norm, "its norm") != 0.1:
        raise Unmappable("its BN momentum is not 0.1")
    hidden = module.t.out_channels
    if site.channels < 1:
        raise Unmappable("its input channels are unknown")
    if any(conv.bias is None for conv in (module.t, module.p, module.g, module.z)):
        raise Unmappable("a projection without bias (netspec's nonlocal: all four with bias)")
    scale = module.scale != 1.0
    if scale and math.isclose(module.scale, site.channels ** -0.5):
        scale_by = "channels"
    elif scale and math.isclose(module.scale, hidden ** -0.5):
        scale_by = "inter"
    elif scale:
        raise Unmappable(f"its logit scale {module.scale:.4g} is neither C^-0.5 nor inter^-0.5")
    else:
        scale_by = "inter"
    shared = dict(scale=scale, scale_by=scale_by)
    grid = [dict(reduction=r, rounding=rounding, **shared)  # timm's r first
            for rounding in ("timm", "floor") for r in [8] + _ratios(site.channels, hidden)]
    grid.append(dict(inter=hidden, **shared))
    return _options(NonLocal, grid, lambda layer: layer.hidden(site.channels) == hidden)


def read_gather_excite(module: Any, site: Site) -> list[Layer]:
    """timm ``GatherExcite``."""
    from netspec.layers.ge import GE

    if module.add_maxpool or act_name(module.gate) != "sigmoid":
        raise Unmappable("add_maxpool or a gate other than sigmoid")
    use_mlp = not _identity(module.mlp)
    if use_mlp and act_name(module.mlp.act) != "relu":
        raise Unmappable("an MLP activation other than ReLU")
    hidden = module.mlp.fc1.out_channels if use_mlp else None
    grid = [dict(extent=module.extent, extra_params=module.gather is not None, mlp=use_mlp, reduction=r)
            for r in (_ratios(site.channels, hidden) if use_mlp else [16])]
    return _options(GE, grid, lambda layer: not use_mlp or layer.hidden(site.channels) == hidden)


TIMM_TWINS = {"EcaModule": "ecam", "LightCbamModule": "lcbam", "SimpleCoordAttn": "scoord",
              "EfficientLocalAttn": "ela", "StripAttn": "strip", "BatNonLocalAttn": "bat"}
"""timm-only attention classes -> the netspec kind written after them (netspec/modules/timm_attention.py)."""


def read_timm_twin(module: Any, site: Site) -> list[Layer]:
    """A timm-only attention module as its netspec twin kind: the kind's defaults, with the module's activation,
    gate, biases and dropout, whose built module holds the same tensors in the same order and shapes (the
    conversion's verification then proves the function). Other widths or kernels are not read."""
    from netspec.layers.base import Context
    from netspec.registry import lookup
    from netspec.shapes import Shape

    if getattr(module, "has_skip", False):
        raise Unmappable("has_skip (netspec's kinds have no skip)")
    if site.channels < 1:
        raise Unmappable("its input channels are unknown")
    kind = TIMM_TWINS[type(module).__name__]
    cls = lookup(kind)
    assert cls is not None
    fields, fixed = cls.model_fields, {}
    for name, part in (("act", getattr(module, "act", None)), ("gate", getattr(module, "gate", None))):
        if name in fields and part is not None and not isinstance(part, str):
            fixed[name] = act_name(part)
    dropout = getattr(module, "dropout", None)
    if "drop" in fields and dropout is not None:
        fixed["drop"] = float(dropout.p)
    grid = [dict(fixed, bias=bias) for bias in (False, True)] if "bias" in fields else [fixed]
    wanted = [tuple(tensor.shape) for tensor in module.state_dict().values()]
    size = 7 * 4  # a map every kind builds at (BAT's blocks of 7 divide it)

    def fits(layer: Layer) -> bool:
        built = layer.build(Shape(site.channels, size, size), Context())
        return [tuple(tensor.shape) for tensor in built.state_dict().values()] == wanted

    options = _options(cls, grid, fits)
    if not options:
        raise Unmappable(f"its tensors are not those of netspec's {kind} with its defaults (other widths or kernels "
                         "are not read)")
    return options


def _self_attention_stride(module: Any) -> int:
    """The stride of a timm self-attention layer: 2 where it average-pools its output or subsamples its queries."""
    pool = getattr(module, "pool", None)
    if not _identity(pool):
        if not (_is(pool, "AvgPool2d") and _single(pool.kernel_size) == 2 and _single(pool.stride) == 2):
            raise Unmappable("its pool is not a 2x2 average pool")
        return 2
    query = getattr(module, "q", None)
    return query.stride[0] if query is not None else 1


def _self_attention_common(module: Any, site: Site, qk_conv: Any, out: int, *, as_conv: bool) -> tuple[int, bool]:
    """What timm's self-attention layers share: their input side and bias. As an attention they keep the shape
    (C -> C, stride 1); as a block's conv (``as_conv``, byobnet's SelfAttnBlock) they may stride."""
    conv = _conv(qk_conv, "its projection")
    stride = _self_attention_stride(module)
    if conv.kernel_size[0] != 1 or stride not in (1, 2) or (stride != 1 and not as_conv):
        raise Unmappable("a stride (as an attention netspec keeps its input's shape)")
    channels = conv.in_channels
    if not as_conv and ((site.channels and channels != site.channels) or out != channels):
        raise Unmappable(f"it maps {channels} -> {out} channels (as an attention netspec keeps the width)")
    return channels, conv.bias is not None


def _dim_head(channels: int, heads: int, dim_head: int) -> int | None:
    """``dim_head`` as the spec writes it: left out (``None``) when timm's rule from the width gives it."""
    from netspec.layers._self_attention import head_dim

    return None if head_dim(channels, heads, None, 1.0) == dim_head else dim_head


def read_lambda(module: Any, site: Site, *, as_conv: bool = False) -> list[Layer]:
    """timm ``LambdaLayer`` (``get_attn("lambda")``): ``lambda``, with local position lambdas (``r``) or, where
    ``r`` is unset (lambda_resnet26rpt_256), relative ones (``r: null``: their table follows the input size)."""
    from netspec.layers.lambda_layer import Lambda

    out = module.num_heads * module.dim_v
    channels, bias = _self_attention_common(module, site, module.qkv, out, as_conv=as_conv)
    for name in ("norm_q", "norm_v"):
        _plain_bn(getattr(module, name), name)
    r = module.conv_lambda.kernel_size[0] if module.conv_lambda is not None else None
    return _options(Lambda, [dict(heads=module.num_heads, dim_head=module.dim_qk, r=r, bias=bias)],
                    lambda layer: True)


def read_halo(module: Any, site: Site, *, as_conv: bool = False) -> list[Layer]:
    """timm ``HaloAttn`` (``get_attn("halo")``): ``halo_attn``."""
    from netspec.layers.halo_attn import HaloAttn

    out = module.num_heads * module.dim_head_v
    channels, bias = _self_attention_common(module, site, module.q, out, as_conv=as_conv)
    avg_down = not _identity(module.pool) and module.block_size % 2 == 0  # pooled where it could subsample
    grid = [dict(heads=module.num_heads, dim_head=_dim_head(out, module.num_heads, module.dim_head_qk),
                 block_size=module.block_size, halo_size=module.halo_size, scale_pos=module.scale_pos_embed,
                 bias=bias, avg_down=avg_down)]
    return _options(HaloAttn, grid, lambda layer: True)


def read_bottleneck_attn(module: Any, site: Site, *, as_conv: bool = False) -> list[Layer]:
    """timm ``BottleneckAttn`` (``get_attn("bottleneck")``, built with its ``feat_size``): ``bottleneck_attn``.
    Its position tables cover the map it sees, netspec's default `size` (the input's static size): the spec
    leaves `size` out, so the blocks of a stage agree; the verification proves the sizes (timm's forward asserts
    its feat_size, and another table size changes the parameter count)."""
    from netspec.layers.bottleneck_attn import BottleneckAttn

    out = module.num_heads * module.dim_head_v
    channels, bias = _self_attention_common(module, site, module.qkv, out, as_conv=as_conv)
    grid = [dict(heads=module.num_heads, dim_head=_dim_head(out, module.num_heads, module.dim_head_qk),
                 scale_pos=module.scale_pos_embed, bias=bias)]
    return _options(BottleneckAttn, grid, lambda layer: True)


SELF_ATTENTION_CONVS: dict[str, Callable[..., list[Layer]]] = {
    "timm.layers.lambda_layer.LambdaLayer": read_lambda,
    "timm.layers.halo_attn.HaloAttn": read_halo,
    "timm.layers.bottleneck_attn.BottleneckAttn": read_bottleneck_attn,
}
"""timm's self-attention layers, which byobnet's SelfAttnBlock runs in place of the bottleneck's kxk conv."""


ATTENTION_READERS: dict[str, Callable[[Any, Site], list[Layer]]] = {
    "timm.layers.squeeze_excite.SEModule": read_se_module,
    "timm.layers.squeeze_excite.EffectiveSEModule": read_effective_se,
    "timm.models._efficientnet_blocks.SqueezeExcite": read_squeeze_excite,
    "torchvision.ops.misc.SqueezeExcitation": read_torchvision_se,
    "timm.layers.eca.EcaModule": read_eca,
    "timm.layers.eca.CecaModule": read_eca,
    "timm.layers.coord_attn.CoordAttn": read_coord,
    "timm.layers.gather_excite.GatherExcite": read_gather_excite,
    "timm.layers.cbam.CbamModule": read_cbam,
    "timm.layers.global_context.GlobalContext": read_global_context,
    "timm.layers.non_local_attn.NonLocalAttn": read_non_local,
    "timm.layers.selective_kernel.SelectiveKernel": lambda module, site: read_selective_kernel(module, site),
    "timm.layers.split_attn.SplitAttn": lambda module, site: read_split_attn(module, site),  # defined below
    "timm.layers.cbam.LightCbamModule": read_timm_twin,
    "timm.layers.coord_attn.SimpleCoordAttn": read_timm_twin,
    "timm.layers.coord_attn.EfficientLocalAttn": read_timm_twin,
    "timm.layers.coord_attn.StripAttn": read_timm_twin,
    "timm.layers.non_local_attn.BatNonLocalAttn": read_timm_twin,
    "timm.layers.lambda_layer.LambdaLayer": read_lambda,
    "timm.layers.halo_attn.HaloAttn": read_halo,
    "timm.layers.bottleneck_attn.BottleneckAttn": read_bottleneck_attn,
}
"""Attention classes (module.ClassName) -> reader."""


def _attention_label(module: Any, where: str) -> str:
    return f"its attention {where} ({type(module).__name__})" if where else type(module).__name__


def read_attention(module: Any, site: Site, where: str) -> list[Layer | None]:
    if _identity(module):
        return [None]
    reader = ATTENTION_READERS.get(class_key(module))
    if reader is None:
        raise Unmappable(f"its attention {where} is a {class_key(module)}, which netspec does not know "
                         f"(known: {', '.join(sorted(key.rsplit('.', 1)[1] for key in ATTENTION_READERS))})")
    try:
        options = reader(module, site)
    except Unmappable as error:
        raise Unmappable(f"{_attention_label(module, where)}: {error}") from None
    if not options:
        raise Unmappable(f"{_attention_label(module, where)}: no netspec params give its widths")
    return list(options)


# --- blocks: each reads into Block (one-block stage params + the attention/conv choices) --------------------


@dataclass
class Block:
    """One residual/inverted block as a one-block ``stage``: its params, and the acceptable attention kinds."""

    params: dict[str, Any]
    attention: list[Layer | None]
    in_channels: int
    act: str


def _downsample(module: Any, in_channels: int, out: int, stride: int) -> bool:
    """Read a ResNet shortcut: whether it is an avg-pool + 1x1 conv (ResNet-D); checks netspec builds the same."""
    from torch import nn

    if _identity(module):
        if stride != 1 or in_channels != out:
            raise Unmappable("its shortcut is the identity where netspec's stage would add a projection")
        return False
    parts = list(module.children()) if isinstance(module, nn.Sequential) else [module]
    avg_down = False
    if parts and (_is(parts[0], "AvgPool2d") or (_identity(parts[0]) and len(parts) == 3)):
        pool = parts.pop(0)
        if _is(pool, "AvgPool2d"):
            if not (pool.kernel_size == stride and pool.stride == stride and pool.ceil_mode
                    and not pool.count_include_pad and pool.padding == 0):
                raise Unmappable("its shortcut pool is not netspec's avg_down pool (stride x stride, ceil mode, "
                                 "padding excluded)")
        avg_down = True
    if len(parts) != 2:
        raise Unmappable("its shortcut is not a 1x1 conv + norm")
    conv = _conv(parts[0], "the shortcut conv")
    if conv.kernel_size[0] != 1 or conv.bias is not None or conv.stride[0] != (1 if avg_down else stride):
        raise Unmappable("its shortcut conv is not netspec's 1x1 projection (kernel 1, no bias, the block's stride)")
    if _norm_act(parts[1], "the shortcut norm") != "none":
        raise Unmappable("its shortcut has an activation")
    return avg_down


def _resnet_params(*, out: int, block: str, mid: int, groups: int, stride: int, act: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(block=block, out=out, stride=stride, act=act)
    if mid != (max(out // 4, 1) if block == "bottleneck" else out):
        params["width"] = mid
    if groups != 1:
        params["groups"] = groups
    return params


def _check_conv(conv: "nn.Conv2d", *, kernel: int, what: str) -> None:
    if conv.kernel_size[0] != kernel or conv.bias is not None or not _same(conv) or conv.dilation[0] != 1:
        raise Unmappable(f"{what} is not a bias-free {kernel}x{kernel} conv with 'same' padding and no dilation")


def read_resnet_block(module: Any) -> Block:
    """timm's and torchvision's ResNet ``BasicBlock`` / ``Bottleneck`` (attention ``se``, ResNet-D shortcut)."""
    bottleneck = hasattr(module, "conv3")
    for name in ("aa", "drop_block"):
        if not _identity(getattr(module, name, None)):
            raise Unmappable(f"its {name} layer has no netspec param")
    acts = {act_name(getattr(module, name)) for name in ("act1", "act2", "act3", "relu") if hasattr(module, name)}
    if len(acts) != 1:
        raise Unmappable(f"its activations differ ({', '.join(sorted(acts))})")
    act = acts.pop()
    convs = [_conv(getattr(module, f"conv{i}"), f"conv{i}") for i in ((1, 2, 3) if bottleneck else (1, 2))]
    norms = [getattr(module, f"bn{i}") for i in range(1, len(convs) + 1)]
    for index, norm in enumerate(norms):
        if _norm_act(norm, f"bn{index + 1}") != "none":
            raise Unmappable(f"bn{index + 1} applies an activation itself")
    strided = convs[1] if bottleneck else convs[0]
    for index, conv in enumerate(convs):
        _check_conv(conv, kernel=3 if conv is strided or not bottleneck else 1, what=f"conv{index + 1}")
    if any(conv.stride[0] != 1 for conv in convs if conv is not strided):
        raise Unmappable("a conv other than the 3x3 one strides")
    in_channels, out, stride = convs[0].in_channels, convs[-1].out_channels, strided.stride[0]
    params = _resnet_params(out=out, block="bottleneck" if bottleneck else "basic", mid=convs[0].out_channels,
                            groups=strided.groups, stride=stride, act=act)
    if strided.out_channels != convs[0].out_channels:
        raise Unmappable("its two first convs have different widths")
    if _downsample(module.downsample, in_channels, out, stride):
        params["avg_down"] = True
    attention = read_attention(getattr(module, "se", None), Site(out, in_channels), "se")
    return Block(params, attention, in_channels, act)


def read_resnest_block(module: Any) -> Block:
    """timm ``ResNestBottleneck``: split attention as the bottleneck's 3x3 conv, avd after it, avg-down shortcut."""
    from netspec.layers.splat import Splat

    if module.avd_first is not None:
        raise Unmappable("avd_first (netspec's avd pools after the 3x3 conv)")
    act = act_name(module.act1)
    splat = module.conv2
    if not _is(splat, "SplitAttn"):
        raise Unmappable("its conv2 is not a SplitAttn (radix 0)")
    conv1, conv3 = _conv(module.conv1, "conv1"), _conv(module.conv3, "conv3")
    inner = _conv(splat.conv, "conv2.conv")
    if inner.kernel_size[0] != 3 or inner.dilation[0] != 1 or inner.bias is not None \
            or _norm_act(splat.bn0, "conv2.bn0") != "none" or _is(splat.bn1, "Identity"):
        raise Unmappable("its split attention differs from netspec's splat (3x3 conv, BN, fc1 + BN)")
    stride = inner.stride[0]
    avd = module.avd_last is not None
    if avd:
        pool = module.avd_last
        if not (pool.kernel_size == 3 and pool.padding == 1 and not pool.ceil_mode and pool.count_include_pad):
            raise Unmappable("its avd pool is not a 3x3 average pool with padding 1")
        stride = pool.stride
        if stride == 1:
            raise Unmappable("a stride-1 avd pool (netspec's avd pools only where the block strides)")
    radix, cardinality = splat.radix, splat.conv.groups // splat.radix
    hidden, mid = splat.fc1.out_channels, conv1.out_channels
    grid = [dict(radix=radix, groups=cardinality, reduction=r, min_hidden=m)
            for r in _ratios(mid * radix, hidden) for m in (32, hidden, 1)]
    options = _options(Splat, grid, lambda layer: layer.hidden(mid) == hidden)
    if not options:
        raise Unmappable("no splat params give its fc width")
    params = _resnet_params(out=conv3.out_channels, block="bottleneck", mid=mid, groups=1, stride=stride, act=act)
    params["conv"] = options[0]
    if avd:
        params["avd"] = True
    if _downsample(module.downsample, conv1.in_channels, conv3.out_channels, stride):
        params["avg_down"] = True
    return Block(params, [None], conv1.in_channels, act)


def _sk_options(sk: Any) -> list[Layer]:
    """timm ``SelectiveKernel`` as netspec's sk (branches of 3x3 convs with dilation 1, 2, ...)."""
    from netspec.layers.sk import SK

    paths = list(sk.paths)
    for index, path in enumerate(paths):
        conv = _conv(path.conv, f"paths.{index}.conv")
        if conv.kernel_size[0] != 3 or conv.dilation[0] != index + 1 or not _same(conv) or conv.bias is not None \
                or _norm_act(path.bn, f"paths.{index}.bn") != "relu":
            raise Unmappable("its branches are not 3x3 convs of dilation 1, 2, ... with BN + ReLU (keep_3x3)")
    attn = sk.attn
    if act_name(attn.act) != "relu" or attn.fc_reduce.bias is not None or attn.fc_select.bias is not None:
        raise Unmappable("its fuse/select differs from netspec's sk (bias-free FCs, BN + ReLU)")
    out, hidden = paths[0].conv.out_channels, attn.fc_reduce.out_channels
    shared = dict(branches=len(paths), groups=paths[0].conv.groups, split=sk.split_input)
    grid = [dict(shared, reduction=16, min_hidden=8, rounding="timm")]  # timm's defaults first
    grid += [dict(shared, reduction=r, min_hidden=m) for r in _ratios(out, hidden) for m in (32, 16, hidden, 1)]
    return _options(SK, grid, lambda layer: layer.hidden(out) == hidden)


def read_selective_kernel(module: Any, site: Site) -> list[Layer]:
    """timm ``SelectiveKernel`` as an attention layer (``get_attn("sk")``): ``sk`` at stride 1, C -> C."""
    conv = _conv(module.paths[0].conv, "paths.0.conv")
    if conv.stride[0] != 1 or module.in_channels != module.out_channels:
        raise Unmappable("a stride or a change of width (as an attention, sk keeps its input's shape)")
    return _sk_options(module)


def read_split_attn(module: Any, site: Site) -> list[Layer]:
    """timm ``SplitAttn`` as an attention layer (``get_attn("splat")``: no norms): ``splat`` at stride 1, C -> C."""
    from netspec.layers.splat import Splat

    conv = _conv(module.conv, "conv")
    if conv.kernel_size[0] != 3 or conv.dilation[0] != 1 or conv.stride[0] != 1 or conv.bias is not None \
            or not _same(conv) or conv.in_channels * module.radix != conv.out_channels:
        raise Unmappable("its conv is not a 'same' 3x3 C -> radix*C without bias (netspec's splat)")
    if act_name(module.act0) != "relu" or act_name(module.act1) != "relu" or not _identity(module.drop):
        raise Unmappable("activations other than ReLU or a drop layer")
    norms = [not _identity(bn) for bn in (module.bn0, module.bn1)]
    if norms[0] != norms[1]:
        raise Unmappable("one norm and not the other (netspec's splat: both or neither)")
    if norms[0]:
        _plain_bn(module.bn0, "bn0"), _plain_bn(module.bn1, "bn1")
    radix, cardinality, hidden = module.radix, conv.groups // module.radix, module.fc1.out_channels
    channels = conv.in_channels
    grid = [dict(radix=radix, groups=cardinality, reduction=r, min_hidden=m, rounding=rounding, norm=norms[0])
            for rounding in ("timm", "floor") for r in [4] + _ratios(channels * radix, hidden) for m in (32, hidden, 1)]
    return _options(Splat, grid, lambda layer: layer.hidden(channels) == hidden)


def read_sk_block(module: Any) -> Block:
    """timm ``SelectiveKernelBasic`` / ``SelectiveKernelBottleneck`` (SKResNet, SKResNeXt)."""
    bottleneck = hasattr(module, "conv3")
    sk = module.conv2 if bottleneck else module.conv1
    others = [module.conv1, module.conv3] if bottleneck else [module.conv2]
    act = act_name(module.act)
    for index, unit in enumerate(others):
        conv = _conv(unit.conv, "a ConvNormAct")
        expected = "none" if unit is others[-1] else act
        if conv.kernel_size[0] != (1 if bottleneck else 3) or conv.stride[0] != 1 or conv.bias is not None \
                or _norm_act(unit.bn, "a ConvNormAct's norm") != expected:
            raise Unmappable("its plain convs differ from netspec's block convs")
    options = _sk_options(sk)
    if not options:
        raise Unmappable("no sk params give its fuse width")
    first = others[0].conv if bottleneck else sk.paths[0].conv
    in_channels = first.in_channels if bottleneck else sk.paths[0].conv.in_channels * (len(sk.paths) if sk.split_input else 1)
    out = others[-1].conv.out_channels
    stride = sk.paths[0].conv.stride[0]
    mid = others[0].conv.out_channels if bottleneck else sk.paths[0].conv.out_channels
    params = _resnet_params(out=out, block="bottleneck" if bottleneck else "basic", mid=mid, groups=1,
                            stride=stride, act=act)
    params["conv"] = options[0]
    if _downsample(module.downsample, in_channels, out, stride):
        params["avg_down"] = True
    attention = read_attention(getattr(module, "se", None), Site(out, in_channels), "se")
    return Block(params, attention, in_channels, act)


def _inverted_params(*, in_channels: int, mid: int, out: int, dw: "nn.Conv2d", act: str,
                     skip: bool) -> dict[str, Any]:
    if dw.groups != mid or dw.in_channels != mid or dw.bias is not None or not _same(dw) or dw.dilation[0] != 1:
        raise Unmappable("its depthwise conv is not a bias-free depthwise conv with 'same' padding")
    stride = dw.stride[0]
    if skip != (stride == 1 and in_channels == out):
        raise Unmappable("it adds its input where netspec's inverted block would not, or the reverse (noskip)")
    params: dict[str, Any] = dict(block="inverted", out=out, stride=stride, act=act, kernel=dw.kernel_size[0])
    return {**params, **_expansion(in_channels, mid)}


def _expansion(in_channels: int, mid: int) -> dict[str, Any]:
    """An expanding block's mid width as the stage writes it: ``expand`` (a ratio the blocks round back to ``mid``),
    else ``width``."""
    ratio = round(mid / in_channels, 6)
    return {"expand": float(ratio)} if max(int(round(in_channels * ratio)), 1) == mid else {"width": mid}


def _pointwise(conv: Any, what: str) -> "nn.Conv2d":
    conv = _conv(conv, what)
    if conv.kernel_size[0] != 1 or conv.stride[0] != 1 or conv.bias is not None or conv.groups != 1:
        raise Unmappable(f"{what} is not a bias-free 1x1 conv")
    return conv


def read_timm_inverted(module: Any) -> Block:
    """timm ``DepthwiseSeparableConv`` / ``InvertedResidual`` (EfficientNet's MBConv, MobileNetV3's bneck)."""
    if not _identity(getattr(module, "aa", None)) or getattr(module, "conv_s2d", None) is not None:
        raise Unmappable("anti-aliasing or space-to-depth (netspec's inverted block has neither)")
    expanding = hasattr(module, "conv_pwl")
    dw = _conv(module.conv_dw, "conv_dw")
    if expanding:
        expand = _pointwise(module.conv_pw, "conv_pw")
        act = _norm_act(module.bn1, "bn1")
        if _norm_act(module.bn2, "bn2") != act or _norm_act(module.bn3, "bn3") != "none":
            raise Unmappable("its norms' activations are not act, act, none")
        project, in_channels, mid = _pointwise(module.conv_pwl, "conv_pwl"), expand.in_channels, expand.out_channels
        if mid == in_channels:
            raise Unmappable("it expands by 1 with a conv that netspec's inverted block leaves out")
    else:
        act = _norm_act(module.bn1, "bn1")
        if _norm_act(module.bn2, "bn2") != "none":
            raise Unmappable("its projection has an activation (pw_act)")
        project, in_channels = _pointwise(module.conv_pw, "conv_pw"), dw.in_channels
        mid = in_channels
    params = _inverted_params(in_channels=in_channels, mid=mid, out=project.out_channels, dw=dw, act=act,
                              skip=module.has_skip)
    return Block(_tf_padding(module, params), read_attention(module.se, Site(mid, in_channels), "se"), in_channels,
                 act)


def _fused_params(*, in_channels: int, mid: int, out: int, conv: "nn.Conv2d", act: str, skip: bool) -> dict[str, Any]:
    from netspec.blocks.fused import DEFAULT_KERNEL

    if conv.groups != 1 or conv.bias is not None or not _same(conv) or conv.dilation[0] != 1:
        raise Unmappable("its first conv is not a bias-free full conv with 'same' padding and no dilation")
    stride = conv.stride[0]
    if skip != (stride == 1 and in_channels == out):
        raise Unmappable("it adds its input where netspec's fused block would not, or the reverse (noskip)")
    params: dict[str, Any] = dict(block="fused", out=out, stride=stride, act=act)
    if conv.kernel_size[0] != DEFAULT_KERNEL:
        params["kernel"] = conv.kernel_size[0]
    return {**params, **_expansion(in_channels, mid)}


def read_edge_residual(module: Any) -> Block:
    """timm ``EdgeResidual`` (EfficientNetV2's Fused-MBConv): ``block: fused``."""
    if not _identity(module.aa):
        raise Unmappable("anti-aliasing (netspec's fused block has none)")
    conv = _conv(module.conv_exp, "conv_exp")
    project = _pointwise(module.conv_pwl, "conv_pwl")
    act = _norm_act(module.bn1, "bn1")
    if _norm_act(module.bn2, "bn2") != "none":
        raise Unmappable("its projection has an activation")
    in_channels, mid = conv.in_channels, conv.out_channels
    if mid == in_channels:
        raise Unmappable("it expands by 1 with a projection that netspec's fused block leaves out")
    params = _fused_params(in_channels=in_channels, mid=mid, out=project.out_channels, conv=conv, act=act,
                           skip=module.has_skip)
    return Block(_tf_padding(module, params), read_attention(module.se, Site(mid, in_channels), "se"), in_channels,
                 act)


def read_conv_bn_act(module: Any) -> Block | None:
    """timm ``ConvBnAct`` with its skip (EfficientNetV2's first stage): ``block: fused`` with `expand: 1`; without
    a skip it is no block (``None``) but a ``conv`` entry (:func:`read_leaf`)."""
    if not module.has_skip:
        return None
    if not _identity(module.aa):
        raise Unmappable("anti-aliasing (netspec's fused block has none)")
    conv = _conv(module.conv, "conv")
    act = _norm_act(module.bn1, "bn1")
    params = _fused_params(in_channels=conv.in_channels, mid=conv.in_channels, out=conv.out_channels, conv=conv,
                           act=act, skip=True)
    return Block(_tf_padding(module, params), [None], conv.in_channels, act)


def _conv_norm_act_parts(unit: Any) -> tuple["nn.Conv2d", str]:
    """torchvision ``Conv2dNormActivation`` (conv, BN, optional act): the conv and the activation name."""
    parts = list(unit.children())
    conv = _conv(parts[0], "a Conv2dNormActivation's conv")
    if len(parts) < 2 or _norm_act(parts[1], "its norm") != "none":
        raise Unmappable("a Conv2dNormActivation without a plain BN")
    return conv, act_name(parts[2]) if len(parts) > 2 else "none"


def read_torchvision_inverted(module: Any) -> Block:
    """torchvision MobileNetV2/V3 ``InvertedResidual`` and EfficientNet ``MBConv``."""
    body = module.conv if hasattr(module, "conv") else module.block
    units = list(body.children())
    if _is(units[-1], "BatchNorm2d"):  # MobileNetV2: ..., Conv2d, BatchNorm2d
        project = units[-2]
        _norm_act(units[-1], "the projection's norm")
        units = units[:-2]
    else:
        project, act = _conv_norm_act_parts(units[-1])
        if act != "none":
            raise Unmappable("its projection has an activation")
        units = units[:-1]
    project = _pointwise(project, "the projection")
    se = units.pop() if units and "Squeeze" in type(units[-1]).__name__ else None
    dw, act = _conv_norm_act_parts(units[-1])
    expand_act = act
    if len(units) == 2:
        expand, expand_act = _conv_norm_act_parts(units[0])
        _pointwise(expand, "the expansion")
        in_channels, mid = expand.in_channels, expand.out_channels
    elif len(units) == 1:
        in_channels = mid = dw.in_channels
    else:
        raise Unmappable("its layers are not [expand,] depthwise, [SE,] project")
    if expand_act != act:
        raise Unmappable("its expansion and depthwise activations differ")
    params = _inverted_params(in_channels=in_channels, mid=mid, out=project.out_channels, dw=dw, act=act,
                              skip=module.use_res_connect)
    return Block(params, read_attention(se, Site(mid, in_channels), "its SE"), in_channels, act)


def _conv_norm_act(unit: Any, what: str) -> tuple["nn.Conv2d", str]:
    """timm ``ConvNormAct`` (conv, BatchNormAct2d, no anti-aliasing): the conv and the activation its norm applies."""
    if not _identity(getattr(unit, "aa", None)):
        raise Unmappable(f"{what} has anti-aliasing (netspec's conv has none)")
    conv = _conv(unit.conv, f"{what}.conv")
    if conv.bias is not None or not _same(conv):
        raise Unmappable(f"{what}.conv has a bias or padding other than (k - 1) / 2 x dilation")
    return conv, _norm_act(unit.bn, f"{what}.bn")


def _regnet_block(convs: tuple["nn.Conv2d", "nn.Conv2d", "nn.Conv2d"], acts: tuple[str, str, str, str],
                  projection: tuple["nn.Conv2d", str] | None, se: Any, se_name: str) -> Block:
    """A RegNet bottleneck read into ``block: regnet`` (timm's and torchvision's alike): its three convs (1x1,
    3x3 group conv at the stride, 1x1), their activations and the one after the addition (act, act, none, act),
    the projection shortcut (its conv and activation; ``None``: the identity), the SE on the mid width."""
    conv1, conv2, conv3 = convs
    act, act2, act3, final = acts
    if act2 != act or act3 != "none" or final != act:
        raise Unmappable("its activations are not act, act, none, then act after the addition (linear_out)")
    if conv1.kernel_size[0] != 1 or conv3.kernel_size[0] != 1 or conv2.kernel_size[0] != 3 \
            or conv1.stride[0] != 1 or conv3.stride[0] != 1 or conv2.dilation[0] != 1 \
            or any(conv.bias is not None for conv in convs) or not _same(conv2):
        raise Unmappable("its convs are not bias-free 1x1, 3x3 (the stride, no dilation), 1x1")
    in_channels, mid, out, stride = conv1.in_channels, conv1.out_channels, conv3.out_channels, conv2.stride[0]
    if projection is not None:
        conv, shortcut_act = projection
        if conv.kernel_size[0] != 1 or conv.stride[0] != stride or shortcut_act != "none" or conv.bias is not None:
            raise Unmappable("its shortcut is not a bias-free 1x1 conv at the block's stride + norm")
    elif stride != 1 or in_channels != out:
        raise Unmappable("its shortcut is the identity where the block changes shape")
    params: dict[str, Any] = dict(block="regnet", out=out, stride=stride, act=act)
    if mid != out:
        params["width"] = mid
    if conv2.groups != 1:
        params["group_width"] = mid // conv2.groups
    attention = read_attention(se, Site(mid, in_channels), se_name)
    return Block(params, attention, in_channels, act)


def read_regnet_block(module: Any) -> Block:
    """timm RegNet ``Bottleneck``: 1x1, 3x3 group conv (stride), SE on the mid width squeezing the block's input
    channels, 1x1 without act, projection shortcut, the act after the addition (``block: regnet``)."""
    conv1, act = _conv_norm_act(module.conv1, "conv1")
    conv2, act2 = _conv_norm_act(module.conv2, "conv2")
    conv3, act3 = _conv_norm_act(module.conv3, "conv3")
    shortcut = module.downsample
    if shortcut is None:
        raise Unmappable("no shortcut (netspec's regnet block always adds one)")
    projection = None
    if not _identity(shortcut):
        if not _is(shortcut, "ConvNormAct"):
            raise Unmappable(f"its shortcut is a {type(shortcut).__name__}, not a 1x1 conv + norm")
        projection = _conv_norm_act(shortcut, "downsample")
    return _regnet_block((conv1, conv2, conv3), (act, act2, act3, act_name(module.act3)), projection,
                         module.se, "se")


def _byob_shortcut(module: Any, in_channels: int, out: int, stride: int) -> bool:
    """byobnet's ``create_shortcut``: the identity, a 1x1 ConvNormAct at the stride, or ``DownsampleAvg`` (a 2x2
    average pool in ceil mode without padding counts, then a 1x1 ConvNormAct): whether it is the last (avg_down)."""
    if module is None:
        raise Unmappable("no shortcut (netspec's blocks always add one)")
    if _identity(module):
        if stride != 1 or in_channels != out:
            raise Unmappable("its shortcut is the identity where the block changes shape")
        return False
    avg_down = _is(module, "DownsampleAvg")
    unit = module.conv if avg_down else module
    if not _is(unit, "ConvNormAct"):
        raise Unmappable(f"its shortcut is a {type(module).__name__}, not a 1x1 conv + norm")
    conv, act = _conv_norm_act(unit, "shortcut")
    if avg_down:
        pool = module.pool
        if stride != 1 and not (_is(pool, "AvgPool2d") and _single(pool.kernel_size) == 2
                                and _single(pool.stride) == stride and pool.ceil_mode and not pool.count_include_pad):
            raise Unmappable("its shortcut pool is not netspec's avg_down pool (2x2, ceil mode, padding excluded)")
    if conv.kernel_size[0] != 1 or conv.stride[0] != (1 if avg_down else stride) or act != "none":
        raise Unmappable("its shortcut conv is not a 1x1 projection at the block's stride without act")
    return avg_down


def read_byob_bottleneck(module: Any) -> Block:
    """timm byobnet's ``BottleneckBlock`` (attention on the mid width, netspec's `attention_at: mid`, or last) and
    ``SelfAttnBlock`` (a self-attention layer in place of the kxk conv: the stage's `conv`): ``block: bottleneck``."""
    conv1, act = _conv_norm_act(module.conv1_1x1, "conv1_1x1")
    conv3, act3 = _conv_norm_act(module.conv3_1x1, "conv3_1x1")
    if act3 != "none" or act_name(module.act) != act or conv1.kernel_size[0] != 1 or conv3.kernel_size[0] != 1:
        raise Unmappable("its 1x1 convs or activations differ from netspec's bottleneck (linear_out)")
    in_channels, mid, out = conv1.in_channels, conv1.out_channels, conv3.out_channels
    self_attn = getattr(module, "self_attn", None)
    params: dict[str, Any]
    if self_attn is None:
        conv2, act2 = _conv_norm_act(module.conv2_kxk, "conv2_kxk")
        _check_conv(conv2, kernel=3, what="conv2_kxk")
        if act2 != act or not _identity(module.conv2b_kxk):
            raise Unmappable("a second kxk conv, or a kxk conv with another activation")
        stride = conv2.stride[0]
        params = _resnet_params(out=out, block="bottleneck", mid=mid, groups=conv2.groups, stride=stride, act=act)
    else:
        reader = SELF_ATTENTION_CONVS.get(class_key(self_attn))
        if reader is None:
            raise Unmappable(f"its self_attn is a {class_key(self_attn)}, which netspec does not know (known: "
                             f"{', '.join(sorted(key.rsplit('.', 1)[1] for key in SELF_ATTENTION_CONVS))})")
        if not _identity(module.conv2_kxk):
            raise Unmappable("a kxk conv before its self-attention (netspec's `conv` replaces it)")
        if _identity(module.post_attn) or _norm_act(module.post_attn, "post_attn") != act:
            raise Unmappable("no norm + act after its self-attention (netspec's block conv has them)")
        try:
            options = reader(self_attn, Site(mid), as_conv=True)
        except Unmappable as error:
            raise Unmappable(f"its self_attn ({type(self_attn).__name__}): {error}") from None
        stride = _self_attention_stride(self_attn)
        params = _resnet_params(out=out, block="bottleneck", mid=mid, groups=1, stride=stride, act=act)
        params["conv"] = options[0]
    if _byob_shortcut(module.shortcut, in_channels, out, stride):
        params["avg_down"] = True
    attention: list[Layer | None] = [None]
    mid_attention, last_attention = getattr(module, "attn", None), getattr(module, "attn_last", None)
    if not _identity(mid_attention):
        attention = read_attention(mid_attention, Site(mid, in_channels), "attn")
        params["attention_at"] = "mid"
    elif not _identity(last_attention):
        attention = read_attention(last_attention, Site(out, in_channels), "attn_last")
    return Block(params, attention, in_channels, act)


FLATTENED = {"torchvision.models.convnext.CNBlock": {"layer_scale": "gamma"}}
"""Per-channel tensors a block keeps as (C, 1, 1) under another name where netspec's keeps (C,) (torchvision
ConvNeXt's layer scale, timm's and netspec's gamma)."""


def source_state_dict(module: "nn.Module") -> dict[str, Any]:
    """``module.state_dict()`` in netspec's order and shapes, the ones its weights load by: the order
    :func:`netspec.weights.load_weights` reads a model in (:func:`netspec.weights.shortcuts_last`: in the blocks
    that register their shortcut first, by class (:data:`netspec.weights.SHORTCUT_FIRST`) or by name, the
    shortcut's tensors after the body's); the per-channel tensors of :data:`FLATTENED` as (C,), named as netspec's."""
    state = module.state_dict()
    renamed: dict[str, str] = {}
    for name, part in module.named_modules():
        for tensor, ours in FLATTENED.get(class_key(part), {}).items():
            renamed[f"{name}.{tensor}" if name else tensor] = f"{name}.{ours}" if name else ours
    if renamed:
        state = type(state)((renamed.get(key, key), value.reshape(-1) if key in renamed else value)
                            for key, value in state.items())
    return {key: state[key] for key in flow_keys(state, shortcut_first_blocks(module))}


def read_torchvision_regnet(module: Any) -> Block:
    """torchvision RegNet ``ResBottleneckBlock`` (its ``proj`` shortcut, ``f``: a, b, [se], c; ReLU after the
    addition): ``block: regnet``."""
    f = module.f
    conv1, act = _conv_norm_act_parts(f.a)
    conv2, act2 = _conv_norm_act_parts(f.b)
    conv3, act3 = _conv_norm_act_parts(f.c)
    projection = _conv_norm_act_parts(module.proj) if module.proj is not None else None
    return _regnet_block((conv1, conv2, conv3), (act, act2, act3, act_name(module.activation)), projection,
                         getattr(f, "se", None), "f.se")


def read_torchvision_cnblock(module: Any) -> Block:
    """torchvision ConvNeXt ``CNBlock`` (depthwise conv, LayerNorm and MLP on channels last, layer scale):
    ``block: convnext``."""
    from netspec.blocks.convnext import DEFAULT_EXPAND, DEFAULT_KERNEL

    parts = list(module.block.children())
    names = [type(part).__name__ for part in parts]
    if names != ["Conv2d", "Permute", "LayerNorm", "Linear", names[4], "Linear", "Permute"]:
        raise Unmappable(f"its block is {', '.join(names)} (netspec's convnext: Conv2d, Permute, LayerNorm, Linear, "
                         "act, Linear, Permute)")
    conv, norm, fc1, act_module, fc2 = parts[0], parts[2], parts[3], parts[4], parts[5]
    conv = _conv(conv, "block.0")
    channels = conv.in_channels
    if conv.groups != channels or conv.out_channels != channels or conv.stride[0] != 1 or conv.bias is None \
            or not _same(conv) or not math.isclose(norm.eps, 1e-6) or fc1.bias is None or fc2.bias is None:
        raise Unmappable("its depthwise conv, LayerNorm (eps 1e-6) or MLP differ from netspec's convnext block")
    act, hidden = act_name(act_module), fc1.out_features
    params: dict[str, Any] = dict(block="convnext", out=channels, stride=1, norm="layer", act=act)
    if conv.kernel_size[0] != DEFAULT_KERNEL:
        params["kernel"] = conv.kernel_size[0]
    if hidden != max(int(DEFAULT_EXPAND * channels), 1):
        params["expand"] = hidden / channels
    return Block(params, [None], channels, act)


def read_convnext_block(module: Any) -> Block:
    """timm ``ConvNeXtBlock`` (V1, and V2 with GRN; linear or 1x1-conv MLP): ``block: convnext``."""
    from netspec.blocks.convnext import DEFAULT_EXPAND, DEFAULT_KERNEL

    conv = _conv(module.conv_dw, "conv_dw")
    channels = conv.in_channels
    if conv.groups != channels or conv.out_channels != channels or conv.stride[0] != 1 or conv.dilation[0] != 1 \
            or conv.bias is None or not _same(conv):
        raise Unmappable("conv_dw is not a stride-1 depthwise conv with bias and 'same' padding (netspec's "
                         "convnext block keeps its input's shape)")
    if not _identity(module.shortcut):
        raise Unmappable("its shortcut is not the identity")
    if not _is(module.norm, "LayerNorm", "LayerNorm2d") or not math.isclose(module.norm.eps, 1e-6) \
            or not module.norm.elementwise_affine:
        raise Unmappable("its norm is not a LayerNorm over the channels with eps 1e-6")
    mlp = module.mlp
    grn = _is(mlp, "GlobalResponseNormMlp")
    if not grn and not _is(mlp, "Mlp"):
        raise Unmappable(f"its mlp is a {type(mlp).__name__} (netspec's convnext: Mlp or GlobalResponseNormMlp)")
    if not _identity(getattr(mlp, "norm", None)) or any(getattr(mlp, name).p != 0 for name in ("drop1", "drop2")) \
            or mlp.fc1.bias is None or mlp.fc2.bias is None:
        raise Unmappable("its MLP has a norm, dropout or a bias-free layer")
    hidden = mlp.fc1.out_channels if hasattr(mlp.fc1, "out_channels") else mlp.fc1.out_features
    act = act_name(mlp.act)
    params: dict[str, Any] = dict(block="convnext", out=channels, stride=1, norm="layer", act=act)
    if conv.kernel_size[0] != DEFAULT_KERNEL:
        params["kernel"] = conv.kernel_size[0]
    if hidden != max(int(DEFAULT_EXPAND * channels), 1):
        expand = hidden / channels
        if max(int(expand * channels), 1) != hidden:
            raise Unmappable(f"its MLP width {hidden} is no multiple of {channels} netspec's expand gives")
        params["expand"] = expand
    if grn:
        params["grn"] = True
        if module.gamma is not None:
            params["ls_init"] = float(module.gamma.detach().reshape(-1)[0]) or 1e-6
    elif module.gamma is None:
        params["ls_init"] = 0.0
    return Block(params, [None], channels, act)


def read_torchvision_fused(module: Any) -> Block:
    """torchvision ``FusedMBConv`` (EfficientNetV2): ``block: fused`` (one kxk conv when it does not expand)."""
    units = list(module.block.children())
    first, act = _conv_norm_act_parts(units[0])
    if len(units) == 2:
        project, project_act = _conv_norm_act_parts(units[1])
        _pointwise(project, "the projection")
        if project_act != "none":
            raise Unmappable("its projection has an activation")
        out, mid = project.out_channels, first.out_channels
    elif len(units) == 1:
        out, mid = first.out_channels, first.in_channels  # no expansion: netspec's single conv straight to out
    else:
        raise Unmappable("its layers are not expand conv [, project]")
    params = _fused_params(in_channels=first.in_channels, mid=mid, out=out, conv=first, act=act,
                           skip=module.use_res_connect)
    return Block(params, [None], first.in_channels, act)


BLOCK_READERS: dict[str, Callable[[Any], Block | None]] = {
    "timm.models.resnet.BasicBlock": read_resnet_block,
    "timm.models.resnet.Bottleneck": read_resnet_block,
    "timm.models.resnest.ResNestBottleneck": read_resnest_block,
    "timm.models.sknet.SelectiveKernelBasic": read_sk_block,
    "timm.models.sknet.SelectiveKernelBottleneck": read_sk_block,
    "timm.models._efficientnet_blocks.DepthwiseSeparableConv": read_timm_inverted,
    "timm.models._efficientnet_blocks.InvertedResidual": read_timm_inverted,
    "timm.models._efficientnet_blocks.EdgeResidual": read_edge_residual,
    "timm.models._efficientnet_blocks.ConvBnAct": read_conv_bn_act,
    "timm.models.regnet.Bottleneck": read_regnet_block,
    "timm.models.byobnet.BottleneckBlock": read_byob_bottleneck,
    "timm.models.byobnet.SelfAttnBlock": read_byob_bottleneck,
    "timm.models.convnext.ConvNeXtBlock": read_convnext_block,
    "torchvision.models.resnet.BasicBlock": read_resnet_block,
    "torchvision.models.resnet.Bottleneck": read_resnet_block,
    "torchvision.models.mobilenetv2.InvertedResidual": read_torchvision_inverted,
    "torchvision.models.mobilenetv3.InvertedResidual": read_torchvision_inverted,
    "torchvision.models.efficientnet.MBConv": read_torchvision_inverted,
    "torchvision.models.efficientnet.FusedMBConv": read_torchvision_fused,
    "torchvision.models.regnet.ResBottleneckBlock": read_torchvision_regnet,
    "torchvision.models.convnext.CNBlock": read_torchvision_cnblock,
}
"""Residual/inverted block classes (module.ClassName) -> reader into one-block stage params (``None``: this one is
no block, read it as a leaf)."""


# --- the other leaves: each reads into an Item of the entry list ---------------------------------------------


@dataclass
class Item:
    """One entry in the making: a netspec kind and its params (a conv still open to absorb its norm and act)."""

    kind: str
    params: dict[str, Any]
    node: "fx.Node"
    inputs: list["fx.Node"]
    owner: str
    block: Block | None = None
    depth: int = 1
    attention: list[Layer | None] = field(default_factory=lambda: [None])


def _conv_item(conv: Any) -> dict[str, Any]:
    conv = _conv(conv, "the conv")
    padding = "same" if _tf_same(conv) else conv.padding[0]
    return dict(out=conv.out_channels, kernel=conv.kernel_size[0], stride=conv.stride[0], padding=padding,
                dilation=conv.dilation[0], groups=conv.groups, bias=conv.bias is not None, norm="none", act="none")


def read_leaf(module: Any) -> tuple[str, dict[str, Any]]:
    """A single-module leaf -> (netspec kind or a pseudo kind ``norm``/``act``/``identity``, params)."""
    from torch import nn

    kind = type(module)
    if kind is nn.Conv2d or _tf_same(module):
        return "conv", _conv_item(module)
    if kind is nn.BatchNorm2d or _is(module, "BatchNormAct2d"):
        return "norm", dict(act=_norm_act(module, "the norm"))
    if class_key(module) in ("timm.layers.norm.LayerNorm2d", "torchvision.models.convnext.LayerNorm2d"):
        if not module.elementwise_affine or module.bias is None:
            raise Unmappable("a LayerNorm2d without affine weight and bias")
        return "lnorm", dict(eps=float(module.eps))
    if kind is nn.Linear or class_key(module) == "timm.layers.linear.Linear":
        return "linear", dict(out=module.out_features, bias=module.bias is not None, act="none")
    if kind in (nn.Identity, nn.Flatten) and (kind is nn.Identity or (module.start_dim, module.end_dim) == (1, -1)):
        return ("identity" if kind is nn.Identity else "flatten"), {}
    if kind is nn.Dropout:
        return ("dropout", dict(p=module.p)) if module.p > 0 else ("identity", {})
    if kind is nn.MaxPool2d:
        if module.dilation not in (1, (1, 1)) or module.ceil_mode:
            raise Unmappable("dilation or ceil mode (netspec's maxpool has neither)")
        return "maxpool", dict(kernel=_single(module.kernel_size), stride=_single(module.stride),
                               padding=_single(module.padding))
    if kind is nn.AdaptiveAvgPool2d:
        if _single(module.output_size) != 1:
            raise Unmappable("an output size other than 1")
        return "avgpool", dict(size=1)
    if _is(module, "SelectAdaptivePool2d"):
        if module.pool_type != "avg":
            raise Unmappable(f"pool type {module.pool_type!r} (netspec's avgpool is 'avg')")
        return "avgpool", {} if _is(module.flatten, "Flatten") or getattr(module.pool, "flatten", False) else dict(size=1)
    if _is(module, "ConvBnAct"):  # timm's EfficientNet/MobileNetV3 conv block
        if not _identity(module.aa):
            raise Unmappable("anti-aliasing (netspec's conv has none)")
        params = _conv_item(module.conv)
        params.update(norm="batch", act=_norm_act(module.bn1, "bn1"))
        return "conv", params
    try:
        return "act", dict(act=act_name(module))
    except Unmappable:
        raise Unmappable("netspec has no kind for it") from None


def _single(value: Any) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise Unmappable(f"non-square {value}")
        return int(value[0])
    return int(value)


LEAF_CLASSES = ("timm.layers.adaptive_avgmax_pool.SelectAdaptivePool2d", "timm.layers.norm_act.BatchNormAct2d",
                "timm.layers.norm.LayerNorm2d", "timm.layers.conv2d_same.Conv2dSame",
                "torchvision.models.convnext.LayerNorm2d",
                "timm.models._efficientnet_blocks.ConvBnAct", "timm.layers.linear.Linear")
"""Classes outside ``torch.nn`` read as one leaf by :func:`read_leaf`."""


def known_classes() -> list[str]:
    """Every class the tracer treats as a known leaf (besides ``torch.nn``'s conv, norm, act, pool, linear)."""
    return sorted({key.rsplit(".", 1)[1] for key in (*BLOCK_READERS, *ATTENTION_READERS, *LEAF_CLASSES)})


# --- tracing --------------------------------------------------------------------------------------------------


def _tracer() -> "fx.Tracer":
    from torch import fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, module: "nn.Module", qualname: str) -> bool:
            key = class_key(module)
            if key in BLOCK_READERS or key in ATTENTION_READERS or key in LEAF_CLASSES:
                return True
            return super().is_leaf_module(module, qualname)

    return Tracer()


def _owner(node: "fx.Node", root: "nn.Module") -> str:
    """The innermost module a traced op ran in: ``ClassName at qualified.name``."""
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path, kind = list(stack.values())[-1]
        name = kind.__name__ if isinstance(kind, type) else str(kind).rsplit(".", 1)[-1]
        return f"{name} at {path or '(root)'}"
    return f"{type(root).__name__} (the model's own forward)"


def _function_item(node: "fx.Node") -> tuple[str, dict[str, Any], list["fx.Node"]]:
    """A traced function or method call -> (kind, params, input nodes)."""
    import torch
    import torch.nn.functional as F

    from torch import fx

    target = node.target
    args = list(node.args)
    if target in (operator.add, torch.add, operator.mul, torch.mul):
        if len(args) != 2 or not all(isinstance(arg, fx.Node) for arg in args) or node.kwargs:
            raise Unmappable(f"{getattr(target, '__name__', target)} with a constant (netspec's add/mul take two entries)")
        return ("add" if target in (operator.add, torch.add) else "mul"), {}, args
    if target is torch.cat:
        dim = node.kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if dim != 1:
            raise Unmappable(f"torch.cat along dim {dim} (netspec's concat joins channels, dim 1)")
        return "concat", {}, list(args[0])
    if target in (torch.flatten, "flatten"):
        start = node.kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
        if start != 1 or node.kwargs.get("end_dim", args[2] if len(args) > 2 else -1) != -1:
            raise Unmappable("a flatten other than flatten(x, 1)")
        return "flatten", {}, [args[0]]
    if target is F.adaptive_avg_pool2d:
        size = node.kwargs.get("output_size", args[1] if len(args) > 1 else None)
        if size not in (1, (1, 1), [1, 1]):
            raise Unmappable(f"adaptive_avg_pool2d to {size} (netspec's avgpool pools to 1x1)")
        return "avgpool", dict(size=1), [args[0]]
    acts = {F.relu: "relu", torch.relu: "relu", F.silu: "silu", F.hardswish: "hardswish", F.gelu: "gelu",
            torch.sigmoid: "sigmoid", F.relu6: "relu6", "relu": "relu", "sigmoid": "sigmoid"}
    if target in acts and isinstance(args[0], fx.Node):
        return "act", dict(act=acts[target]), [args[0]]
    name = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    raise Unmappable(f"the operation {name} has no netspec kind")


def _trace(module: "nn.Module") -> "fx.Graph":
    try:
        return _tracer().trace(module)
    except Exception as error:  # fx raises TraceError, TypeError, NotImplementedError... each with its reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise _fail(f"{type(module).__name__}: torch.fx cannot trace its forward: {type(error).__name__}: {reason}") \
            from None


def _items(module: "nn.Module", graph: "fx.Graph") -> tuple[list[Item], "fx.Node", list[Any]]:
    """The graph's nodes read into items (one per op netspec keeps); identities map to what they pass through."""
    from torch import fx

    alias: dict[fx.Node, fx.Node] = {}
    items: list[Item] = []
    placeholder = None
    outputs: list[Any] = []
    problems: list[str] = []

    def real(node: Any) -> Any:
        while isinstance(node, fx.Node) and node in alias:
            node = alias[node]
        return node

    for node in graph.nodes:
        if node.op == "placeholder":
            if node.args:  # an optional argument (its default as the node's arg): an op that uses it is reported
                continue
            if placeholder is not None:
                problems.append(f"{type(module).__name__}: its forward takes more than one input")
            placeholder = node
            continue
        if node.op == "output":
            result = node.args[0]
            outputs = [real(value) for value in (result if isinstance(result, (tuple, list)) else [result])]
            continue
        if node.op == "get_attr":
            owner = _owner(node, module)
            path = owner.partition(" at ")[2]
            own = node.target[len(path) + 1:] if path and node.target.startswith(path + ".") else node.target
            problems.append(f"{owner}: reads its tensor {own} directly (no netspec kind does)")
            continue
        try:
            if node.op == "call_module":
                child = module.get_submodule(node.target)
                owner = f"{type(child).__name__} at {node.target}"
                key = class_key(child)
                inputs = [real(arg) for arg in node.args if isinstance(arg, fx.Node)]
                block = BLOCK_READERS[key](child) if key in BLOCK_READERS else None
                if block is not None:
                    items.append(Item("stage", dict(block.params), node, inputs, owner, block=block,
                                      attention=block.attention))
                    continue
                if key in ATTENTION_READERS:
                    channels = _channels_into(child)
                    options = read_attention(child, Site(channels), "")
                    items.append(Item("attention", {}, node, inputs, owner, attention=options))
                    continue
                try:
                    kind, params = read_leaf(child)
                except Unmappable as error:
                    known = ", ".join(known_classes())
                    raise Unmappable(f"{error}; netspec knows these blocks: {known}, and torch.nn's Conv2d, "
                                     f"BatchNorm2d, activations, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Linear, "
                                     f"Dropout, Flatten, Identity") from None
            else:
                owner = _owner(node, module)
                kind, params, inputs = _function_item(node)
                inputs = [real(arg) for arg in inputs]
            if kind == "identity":
                alias[node] = inputs[0]
                continue
            items.append(Item(kind, params, node, inputs, owner))
        except Unmappable as error:
            owner = f"{type(module.get_submodule(node.target)).__name__} at {node.target}" \
                if node.op == "call_module" else _owner(node, module)
            problems.append(f"{owner}: {error}")
    if problems:
        known = (f"netspec knows these blocks: {', '.join(known_classes())}, and torch.nn's Conv2d, BatchNorm2d, "
                 "activations, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Linear, Dropout, Flatten, Identity")
        lines = _collapse(problems)
        if not any("netspec knows these blocks" in line for line in lines):
            lines.append(known)
        raise ConversionError([Problem((), message) for message in lines])
    if placeholder is None:
        raise _fail(f"{type(module).__name__}: its forward takes no input")
    return items, placeholder, outputs


def _collapse(problems: list[str]) -> list[str]:
    """One line per distinct reason: ``Class at first.name (and N more like it): reason``."""
    seen: dict[str, list[str]] = {}
    for problem in problems:
        where, _, reason = problem.partition(": ")
        seen.setdefault(f"{where.split(' at ')[0]}: {reason}", []).append(where)
    lines = []
    for key, wheres in seen.items():
        reason = key.partition(": ")[2]
        more = f" (and {len(wheres) - 1} more like it)" if len(wheres) > 1 else ""
        lines.append(f"{wheres[0]}{more}: {reason}")
    return lines


def _channels_into(module: Any) -> int:
    """The channels an attention module is built for (its first conv's input side); 0 when none says."""
    if _is(module, "SelectiveKernel", "SplitAttn"):
        return module.in_channels if _is(module, "SelectiveKernel") else module.conv.in_channels
    names = ("fc1", "conv_reduce", "fc", "conv1", "mlp", "conv_attn", "channel", "t", "mlp_scale", "mlp_add", "conv_h",
             "qkv", "q")
    for name in names:  # conv_h last: CoordAttn's maps mip -> C (its conv1 says C), ELA's and StripAttn's C -> C
        part = getattr(module, name, None)
        if part is not None:
            part = getattr(part, "fc1", part)
            channels = getattr(part, "in_channels", None) or getattr(part, "in_features", None)  # conv or Linear
            if channels:
                return channels
    return 0  # no weight tells them (ECA's Conv1d, a GE without MLP): their readers do not need them


# --- from items to entries ------------------------------------------------------------------------------------


def _users(node: "fx.Node", items: list[Item]) -> int:
    return sum(inp is node for item in items for inp in item.inputs)


def _fuse(items: list[Item], outputs: list[Any]) -> list[Item]:
    """conv -> norm -> act and linear -> act become one entry; avgpool(size 1) -> flatten becomes avgpool."""
    fused: list[Item] = []
    for item in items:
        previous = fused[-1] if fused else None
        single = previous is not None and item.inputs == [previous.node] \
            and _users(previous.node, items) == 1 and previous.node not in outputs
        if single and item.kind == "norm" and previous.kind == "conv" and previous.params["norm"] == "none" \
                and previous.params["act"] == "none":
            previous.params.update(norm="batch", act=item.params["act"])
            previous.node = item.node
            continue
        if single and item.kind == "lnorm" and previous.kind == "conv" and previous.params["norm"] == "none" \
                and previous.params["act"] == "none" and math.isclose(item.params["eps"], 1e-6):
            previous.params["norm"] = "layer"  # conv + LayerNorm2d: `norm: layer` (its eps 1e-6, timm's)
            previous.node = item.node
            continue
        if item.kind == "lnorm":  # alone (before a downsampling conv, in a head): a `layernorm` entry
            item.kind = "layernorm"
            item.params = {} if math.isclose(item.params["eps"], 1e-6) else dict(item.params)
        if single and item.kind == "act" and previous.kind in ("conv", "linear") and previous.params["act"] == "none":
            previous.params["act"] = item.params["act"]
            previous.node = item.node
            continue
        if single and item.kind == "flatten" and previous.kind == "avgpool" and previous.params == {"size": 1}:
            previous.params = {}
            previous.node = item.node
            continue
        pool = fused[-2] if len(fused) > 1 else None
        if single and item.kind == "flatten" and previous.kind == "layernorm" and pool is not None \
                and pool.kind == "avgpool" and pool.params == {"size": 1} and previous.inputs == [pool.node] \
                and _users(pool.node, items) == 1 and pool.node not in outputs:
            pool.params = {}  # pool, LayerNorm over C, flatten (timm's NormMlpClassifierHead): pool to (N, C), norm
            previous.node = item.node
            continue
        if item.kind in ("norm", "act"):
            raise _fail(f"{item.owner}: a {'norm' if item.kind == 'norm' else 'activation'} that does not follow a "
                        f"conv (or linear) it could join; netspec has no kind for it alone")
        fused.append(item)
    return fused


def _compatible(first: Item, second: Item) -> list[Layer | None]:
    """The attention choices two blocks share, if every other param agrees and ``second`` continues ``first``."""
    if first.kind != "stage" or second.kind != "stage" or second.inputs != [first.node]:
        return []
    if second.params["stride"] != 1:
        return []
    later = dict(second.params)
    for name in ("avg_down", "avd", "padding"):  # they act only where a block strides or projects: the rest agree
        if name in first.params:
            later.setdefault(name, first.params[name])
    if {**first.params, "stride": 1} != later:
        return []
    return [option for option in first.attention if option in second.attention]


def _group(items: list[Item], outputs: list[Any], all_items: list[Item]) -> list[Item]:
    """Consecutive blocks that agree on their params (the attention kind included) become one stage."""
    grouped: list[Item] = []
    for item in items:
        previous = grouped[-1] if grouped else None
        shared = _compatible(previous, item) if previous is not None else []
        if shared and _users(previous.node, all_items) == 1 and previous.node not in outputs:
            previous.depth += 1
            previous.attention = shared
            previous.node = item.node
            continue
        grouped.append(item)
    return grouped


def _layer(item: Item, defaults_act: str, name: str | None, inputs: Any, defaults_norm: str = "batch") -> Layer:
    from netspec.layers.conv import same_padding
    from netspec.registry import KINDS

    params = dict(item.params)
    wiring = {key: value for key, value in (("name", name), ("inputs", inputs)) if value is not None}
    if item.kind == "attention":
        layer = item.attention[0]
        return layer.model_copy(update=wiring) if wiring else layer
    if item.kind == "conv":
        if params["padding"] == same_padding(params["kernel"], params["dilation"]):
            params["padding"] = None
        if params["bias"] == (params["norm"] == "none"):
            params["bias"] = None
        params["norm"] = None if params["norm"] == defaults_norm else params["norm"]
    if item.kind == "stage" and params.get("norm") == defaults_norm:
        params["norm"] = None
    if item.kind == "stage":
        params["depth"] = item.depth
        if item.attention[0] is not None:
            params["attention"] = item.attention[0]
    if "act" in params and item.kind in ("conv", "stage") and params["act"] == defaults_act:
        params["act"] = None
    return KINDS[item.kind](**params, **wiring)


def _entry_name(item: Item, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", str(item.node.target if item.node.op == "call_module" else item.node.name).lower())
    base = re.sub(r"_+", "_", base).strip("_") or item.kind
    if not re.match(r"[a-z_]", base):
        base = f"{item.kind}_{base}"
    name, suffix = base[:60], 2
    while name in taken:
        name, suffix = f"{base[:56]}_{suffix}", suffix + 1
    taken.add(name)
    return name


def _norm_statistics(module: "nn.Module") -> tuple[float | None, float | None]:
    """The spec-wide eps/momentum (``None``: PyTorch's defaults), when every BatchNorm agrees."""
    from torch.nn.modules.batchnorm import _BatchNorm

    found = {(norm.eps, norm.momentum) for norm in module.modules() if isinstance(norm, _BatchNorm)}
    if len(found) > 1:
        listed = ", ".join(f"eps {eps} momentum {momentum}" for eps, momentum in sorted(found, key=str))
        raise _fail(f"{type(module).__name__}: its norms use different settings ({listed}); a spec has one setting")
    eps, momentum = found.pop() if found else (1e-5, 0.1)
    return (None if math.isclose(eps, 1e-5) else eps), (None if momentum is not None and math.isclose(momentum, 0.1)
                                                        else momentum)


def _input_size(module: "nn.Module", input_size: Any, channels: int) -> tuple[int, int, int]:
    if input_size is None:
        config = getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None) or {}
        size = config.get("input_size")
        return tuple(size) if size else (channels, DEFAULT_SIZE, DEFAULT_SIZE)  # type: ignore[return-value]
    if isinstance(input_size, int):
        return (channels, input_size, input_size)
    size = tuple(int(value) for value in input_size)
    if len(size) == 2:
        return (channels, *size)  # type: ignore[return-value]
    if len(size) != 3:
        raise ValueError(f"input_size: an int, (H, W) or (C, H, W), got {input_size!r}")
    return size  # type: ignore[return-value]


def _first_channels(module: "nn.Module") -> int:
    from torch import nn

    for part in module.modules():
        if isinstance(part, nn.Conv2d):
            return part.in_channels
    raise _fail(f"{type(module).__name__}: no Conv2d, so netspec cannot tell its input channels")


def spec_of_module(module: "nn.Module", *, input_size: Any = None, name: str | None = None) -> Spec:
    """The spec of ``module`` without verifying it (:func:`from_module` verifies)."""
    from netspec.spec import Defaults, Input

    graph = _trace(module)
    items, placeholder, outputs = _items(module, graph)
    channels = _first_channels(module)
    size = _input_size(module, input_size, channels)
    fused = _fuse(items, outputs)
    grouped = _group(fused, outputs, fused)
    # the spec's defaults: the commonest activation of its convs and stages (those without one keep `act: none`),
    # and LayerNorm where the network has no BatchNorm but convs or stages with LayerNorm (ConvNeXt)
    acts = Counter(item.params["act"] for item in grouped if item.kind in ("conv", "stage")
                   and item.params["act"] != "none")
    default_act = acts.most_common(1)[0][0] if acts else "relu"
    norms = {item.params.get("norm", "batch") for item in grouped if item.kind in ("conv", "stage")} - {"none"}
    default_norm = "layer" if norms == {"layer"} else "batch"
    eps, momentum = _norm_statistics(module)
    # wiring: an entry reads the previous one implicitly; any other input is named with `from:`
    produced: dict[Any, int] = {placeholder: -1}
    for index, item in enumerate(grouped):
        produced[item.node] = index
    missing = [value for value in outputs if value not in produced]
    if missing or not outputs:
        raise _fail(f"{type(module).__name__}: its output is not a tensor that an entry computes")
    needs_name: set[int] = set()
    wiring: list[Any] = []
    for index, item in enumerate(grouped):
        sources = [produced[node] for node in item.inputs]
        if len(sources) == 1 and sources[0] == index - 1:
            wiring.append(None)
        else:
            needs_name.update(source for source in sources if source >= 0)
            wiring.append(sources)
    output_indices = [produced[node] for node in outputs]
    if output_indices != [len(grouped) - 1]:
        needs_name.update(index for index in output_indices if index >= 0)
    taken: set[str] = {"input"}
    names = {index: _entry_name(grouped[index], taken) for index in sorted(needs_name)}

    def ref(source: int) -> str:
        return "input" if source < 0 else names[source]

    layers = []
    for index, item in enumerate(grouped):
        sources = wiring[index]
        inputs = None if sources is None else (ref(sources[0]) if len(sources) == 1 and item.kind not in
                                               ("add", "mul", "concat") else tuple(ref(s) for s in sources))
        layers.append(_layer(item, default_act, names.get(index), inputs, default_norm))
    spec = Spec(
        name=name, input=Input(channels=size[0], size=[size[1], size[2]] if size[1] != size[2] else size[1]),
        defaults=Defaults(act=default_act, norm=default_norm, eps=eps, momentum=momentum), layers=layers,
        outputs=None if output_indices == [len(grouped) - 1] else [ref(index) for index in output_indices],
    )
    from netspec.spec import loads

    return loads(spec.to_yaml(), name=f"<{name or type(module).__name__}>")


@dataclass(frozen=True)
class Verification:
    params: int
    max_difference: float
    scale: float


def verify_spec(spec: Spec, module: "nn.Module", *, input_size: Any = None) -> Verification:
    """Prove ``spec`` computes ``module``: same parameter count, a strict weight load, equal eval outputs."""
    import torch

    label = f"<{spec.name or type(module).__name__}>"
    model = build(spec, seed=0)
    theirs = sum(p.numel() for p in module.parameters())
    ours = sum(p.numel() for p in model.parameters())
    if theirs != ours:
        raise _fail(f"{type(module).__name__}: the spec builds {ours:,} parameters, the module has {theirs:,}", label)
    load_weights(model, source_state_dict(module), strict=True)
    size = _input_size(module, input_size, spec.input.channels)
    was_training = module.training
    try:
        module.eval()
        model.eval()
        generator = torch.Generator().manual_seed(0)
        first = next(module.parameters(), None)
        x = torch.randn((1, *size), generator=generator, dtype=first.dtype if first is not None else torch.float32)
        with torch.no_grad():
            expected, got = module(x), model(x)
    finally:
        module.train(was_training)
    pairs = list(zip(*(value if isinstance(value, (tuple, list)) else (value,) for value in (expected, got))))
    difference, scale = 0.0, 0.0
    for theirs_out, ours_out in pairs:
        if theirs_out.shape != ours_out.shape:
            raise _fail(f"{type(module).__name__}: output shape {tuple(ours_out.shape)}, the module gives "
                        f"{tuple(theirs_out.shape)}", label)
        if not bool(torch.isfinite(theirs_out).all()):
            raise _fail(f"{type(module).__name__}: the module's own output is not finite (inf or NaN) on a seeded "
                        f"{tuple(size)} input, so nothing can be compared (check its weights, or pass another "
                        "input_size; --no-verify skips the proof)", label)
        difference = max(difference, float((theirs_out - ours_out).abs().max().nan_to_num(nan=math.inf)))
        scale = max(scale, float(theirs_out.abs().max()))
    if not difference <= TOLERANCE * max(scale, 1.0):
        raise _fail(f"{type(module).__name__}: the spec's output differs from the module's by {difference:.3g} "
                    f"(largest output {scale:.3g}) on a seeded {tuple(size)} input", label)
    return Verification(ours, difference, scale)


def from_module(module: "nn.Module", *, input_size: Any = None, verify: bool = True, name: str | None = None) -> Spec:
    """The spec that builds ``module``'s network (its weights load into it by architecture).

    ``input_size``: an int, (H, W) or (C, H, W) for the spec's ``input`` and the verification pass (default:
    timm's ``pretrained_cfg['input_size']``, else 224). ``verify`` (default) builds the spec, compares the
    parameter count, loads ``module.state_dict()`` with ``load_weights(strict=True)`` and compares one eval
    forward pass on a seeded input; ``False`` skips that. Raises :class:`ConversionError` (a ``SpecError``).
    """
    from torch import nn

    if not isinstance(module, nn.Module):
        raise TypeError(f"from_module takes a torch.nn.Module, got {type(module).__name__}")
    spec = spec_of_module(module, input_size=input_size, name=name)
    if verify:
        verify_spec(spec, module, input_size=input_size)
    return spec


# --- sources: timm:NAME, torchvision:NAME -----------------------------------------------------------------------


def _imported(spec: Spec, module: "nn.Module", notes: list[str]) -> Imported:
    return Imported(spec, spec.to_yaml(), tuple(notes), module)


def import_timm(target: str, *, args: dict[str, Any] | None = None, verify: bool = True,
                input_size: Any = None) -> Imported:
    """``timm:NAME``: ``timm.create_model(NAME, **args)`` (no download: random weights unless args say otherwise)."""
    try:
        import timm
    except Exception as error:  # timm needs torchvision, which may not import beside this torch
        raise _fail(f"timm is not importable here ({type(error).__name__}: {error}); install the `interop` extra",
                    f"timm:{target}") from None
    names = timm.list_models()
    if target not in names:
        import difflib

        close = difflib.get_close_matches(target, names, n=5) or timm.list_models(f"*{target}*")[:5]
        hint = f" (did you mean: {', '.join(close)})" if close else ""
        raise _fail(f"timm has no model {target!r}{hint}", f"timm:{target}")
    try:
        module = timm.create_model(target, **(args or {}))
    except Exception as error:
        raise _fail(f"timm.create_model({target!r}, **{args or {}}) failed: {type(error).__name__}: {error}",
                    f"timm:{target}") from None
    spec = from_module(module, input_size=input_size, verify=verify, name=target.replace(".", "_"))
    return _imported(spec, module, [f"verified: parameters, strict weight load, one eval forward pass"]
                     if verify else ["not verified (--no-verify)"])


def import_torchvision(target: str, *, args: dict[str, Any] | None = None, verify: bool = True,
                       input_size: Any = None) -> Imported:
    """``torchvision:NAME``: ``torchvision.models.get_model(NAME, **args)`` (random weights)."""
    try:
        import torchvision
    except Exception as error:
        raise _fail(f"torchvision is not importable here ({type(error).__name__}: {error})",
                    f"torchvision:{target}") from None
    try:
        module = torchvision.models.get_model(target, **(args or {}))
    except Exception as error:
        raise _fail(f"torchvision.models.get_model({target!r}) failed: {type(error).__name__}: {error}",
                    f"torchvision:{target}") from None
    spec = from_module(module, input_size=input_size, verify=verify, name=target)
    return _imported(spec, module, [] if verify else ["not verified (--no-verify)"])
