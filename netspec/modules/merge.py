"""Merges of several tensors (graph specs): concatenation along channels, elementwise sum and product."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def sum_of(terms: Sequence[torch.Tensor]) -> torch.Tensor:
    """``terms[0] + terms[1] + ...``, added left to right (no stacking into one tensor: each keeps its memory format)."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


class Concat(nn.Module):
    """``torch.cat(inputs, dim=1)``: channels after channels, in the order of ``from:``."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=1)


class Add(nn.Module):
    """The elementwise sum of the inputs (broadcast: an (N, C, 1, 1) term adds to every position)."""

    def forward(self, first: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return sum_of((first, *rest))


class AddAct(Add):
    """The sum of the inputs, then an activation (HRNet's fuse: ``relu(x0 + up(x1) + ...)``; BiFPN's nodes)."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.act = act

    def forward(self, first: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(first, *rest))


class Mul(nn.Module):
    """The elementwise product of the inputs (broadcast: an (N, C, 1, 1) gate scales every position)."""

    def forward(self, first: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        product = first * rest[0]
        for factor in rest[1:]:
            product = product * factor
        return product
