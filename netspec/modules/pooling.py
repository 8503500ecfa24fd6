"""Global pooling for the attention gates, written for the backward pass as much as the forward.

- :func:`mean` is ``x.sum(dims) / count`` when a gradient will flow: the value of ``x.mean(dims)``, but its
  backward is a broadcast view of the (small) pooled gradient, where ``mean``'s backward materialises a
  full-size ``grad / count``; in a gate (SE, ECA, CBAM, SK) that is one full pass over the feature map fewer
  (~25% of SE's backward). Without a gradient it is ``x.mean`` (one op, not two).
- :func:`amax` takes the maximum with indices when a gradient will flow (``adaptive_max_pool2d`` /
  ``max(dim)``, as the official CBAM code's ``max_pool2d`` and ``torch.max``: the gradient goes to one
  maximal element, by index), and ``amax`` otherwise (the fastest forward). ``amax``'s own backward compares
  the whole map with the maximum and divides by the tie count: 3-5x slower than the indexed one.
- :class:`PooledConv` is the 1x1 conv of the gates' MLPs, run on the pooled (N, C, 1, 1) vector as one
  matrix product: the same parameters and function, a quarter of the conv path's cost forward and backward.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mean(x: torch.Tensor, dims: tuple[int, ...], *, keepdim: bool = True) -> torch.Tensor:
    """``x.mean(dims, keepdim=keepdim)``, with a broadcast (not materialised) backward."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x.mean(dims, keepdim=keepdim)  # one op rather than two when no backward follows
    count = 1
    for dim in dims:
        count *= x.shape[dim]
    return x.sum(dims, keepdim=keepdim) * (1.0 / count)


def amax(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``x.amax(dims, keepdim=True)`` for ``dims`` = ``(2, 3)`` (over the map) or ``(1,)`` (over the channels)."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x.amax(dims, keepdim=True)
    if dims == (2, 3):
        return F.adaptive_max_pool2d(x, 1)
    if len(dims) == 1:
        return x.max(dims[0], keepdim=True).values
    return x.amax(dims, keepdim=True)


class PooledConv(nn.Conv2d):
    """A 1x1 conv (same parameters, same state dict) that runs on pooled input as one matrix product: a
    (N, C, 1, 1) map gives (N, C', 1, 1), a pooled (N, C) vector gives (N, C')."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return F.linear(x, self.weight.flatten(1), self.bias)
        if x.shape[-2:] == (1, 1) and self.kernel_size == (1, 1) and self.groups == 1:
            return F.linear(x.flatten(1), self.weight.flatten(1), self.bias).view(x.shape[0], -1, 1, 1)
        return super().forward(x)
