"""Fold batch norms into the convolutions before them, for inference (as Ultralytics' ``model.fuse()``).

In eval mode a ``BatchNorm2d`` after a ``Conv2d`` is an affine map per output channel, so it can be folded into the
conv's weight and bias: ``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta``. The folded
network computes the same eval-mode function with one op less per conv.

Found, in every submodule of the model:

- in an ``nn.Sequential`` (netspec's ``ConvNormAct``, torchvision-style ``Sequential(conv, bn, act)``), a ``Conv2d``
  (or ungrouped ``ConvTranspose2d``, netspec's ``upconv``) child directly followed by a ``BatchNorm2d`` child: the
  norm child is removed;
- in any other module (a ``torch.fx.GraphModule`` included), a ``Conv2d`` child whose output goes only into a
  ``BatchNorm2d`` child, found by tracing that module's own ``forward`` (children as leaves): the norm child becomes
  ``nn.Identity``, so the forward is unchanged. A module whose forward cannot be traced is left as it is (its
  children are still visited).

A norm without running statistics (``track_running_stats=False``) normalises with batch statistics and is kept.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from torch import nn

ModuleT = TypeVar("ModuleT", bound="nn.Module")


def fold(conv: "nn.Conv2d | nn.ConvTranspose2d", norm: "nn.modules.batchnorm._BatchNorm") -> None:
    """Fold ``norm`` (eval mode: running statistics) into ``conv`` in place; ``conv`` gains a bias if it had none."""
    import torch
    from torch import nn

    with torch.no_grad():
        weight = conv.weight
        scale = torch.rsqrt(norm.running_var.double() + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight.double()
        shift = -norm.running_mean.double() * scale
        if norm.bias is not None:
            shift = shift + norm.bias.double()
        bias = conv.bias.double() * scale + shift if conv.bias is not None else shift
        if isinstance(conv, nn.ConvTranspose2d):  # weight (in, out, kh, kw): the output channel is dim 1
            shape = (1, -1, *([1] * (weight.dim() - 2)))
        else:
            shape = (-1, *([1] * (weight.dim() - 1)))
        conv.weight.copy_((weight.double() * scale.reshape(shape)).to(weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(bias.to(device=weight.device, dtype=weight.dtype),
                                     requires_grad=weight.requires_grad)
        else:
            conv.bias.copy_(bias.to(conv.bias.dtype))


def _convs() -> tuple[type, ...]:
    """Convolutions a following batch norm folds into: ``Conv2d`` and ``Conv2dSame`` (TF padding pads the input,
    so the output channels stay an affine map away from the norm's), ungrouped ``ConvTranspose2d``."""
    from torch import nn

    from netspec.modules.conv import Conv2dSame

    return nn.Conv2d, Conv2dSame, nn.ConvTranspose2d


def _foldable(conv: "nn.Module", norm: "nn.Module") -> bool:
    from torch import nn
    from torch.nn.modules.batchnorm import _BatchNorm

    return (
        (type(conv) in _convs() and (type(conv) is not nn.ConvTranspose2d or conv.groups == 1))
        and isinstance(norm, _BatchNorm)
        and norm.track_running_stats
        and norm.running_mean is not None
        and norm.num_features == conv.out_channels
    )


def _fuse_sequential(module: "nn.Sequential") -> int:
    names = list(module._modules)
    folded = 0
    for first, second in zip(names, names[1:]):
        conv, norm = module._modules.get(first), module._modules.get(second)
        if conv is not None and norm is not None and _foldable(conv, norm):
            fold(conv, norm)  # type: ignore[arg-type]
            del module._modules[second]
            folded += 1
    return folded


def _pairs_in_graph(graph: "object", module: "nn.Module") -> list[tuple[str, str]]:
    """``(conv, norm)`` child names where the conv's only user is the norm, in ``graph`` (fx) of ``module``."""
    calls: dict[str, int] = {}
    for node in graph.nodes:  # type: ignore[attr-defined]
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:  # type: ignore[attr-defined]
        if node.op != "call_module" or len(node.users) != 1 or calls[node.target] != 1:
            continue
        user = next(iter(node.users))
        if user.op != "call_module" or len(user.args) != 1 or user.kwargs or user.args[0] is not node or (
            calls[user.target] != 1  # a module called twice keeps its weights for its other call
        ):
            continue
        try:
            conv, norm = module.get_submodule(node.target), module.get_submodule(user.target)
        except AttributeError:
            continue
        if _foldable(conv, norm):
            pairs.append((node.target, user.target))
    return pairs


def _trace(module: "nn.Module") -> "object | None":
    """The fx graph of ``module``'s own forward with its children as leaves, or ``None`` if it cannot be traced."""
    from torch import fx

    class ChildrenAsLeaves(fx.Tracer):
        def is_leaf_module(self, child: "nn.Module", qualified_name: str) -> bool:
            return child is not module

    import torch

    try:
        with torch.no_grad():  # the inference path: forwards that branch on `requires_grad` trace as they predict
            return ChildrenAsLeaves().trace(module)
    except Exception:  # data-dependent control flow, unsupported ops: leave the module as it is
        return None


def _fuse_traced(module: "nn.Module") -> int:
    from torch import fx, nn

    graph = module.graph if isinstance(module, fx.GraphModule) else _trace(module)
    if graph is None:
        return 0
    folded = 0
    for conv_name, norm_name in _pairs_in_graph(graph, module):
        norm = module.get_submodule(norm_name)
        if isinstance(norm, nn.Identity):
            continue  # shared norm already folded
        fold(module.get_submodule(conv_name), norm)  # type: ignore[arg-type]
        parent_name, _, child = norm_name.rpartition(".")
        setattr(module.get_submodule(parent_name) if parent_name else module, child, nn.Identity())
        folded += 1
    return folded


def fuse(model: ModuleT) -> ModuleT:
    """Fold every batch norm that follows a convolution into it, **in place**, and return ``model``.

    For inference: the fused model computes ``model``'s eval-mode function (running statistics); its training-mode
    function differs (no batch statistics), so fine-tune the unfused model. Copy first (``copy.deepcopy``) to keep
    the original. Works on any ``nn.Module``: netspec's ``nn.Sequential`` and ``torch.fx.GraphModule`` models, and
    others (see the module docstring for what is found). As Ultralytics' ``model.fuse()`` before predicting.
    """
    from torch import fx, nn

    own = dict(model.named_modules())
    for name, module in reversed(list(own.items())):  # innermost first: a parent's trace sees fused children
        if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
            _fuse_sequential(module)
        elif len(module._modules) >= 2:
            children = list(module.children())
            if any(type(child) in _convs() for child in children) and any(
                _foldable_norm(child) for child in children
            ) or isinstance(module, fx.GraphModule):
                _fuse_traced(module)
    return model


def _foldable_norm(module: "nn.Module") -> bool:
    from torch.nn.modules.batchnorm import _BatchNorm

    return isinstance(module, _BatchNorm)
