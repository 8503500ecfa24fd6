"""Stochastic depth (Huang et al., ECCV 2016, arXiv:1603.09382) as torchvision's ``ops.StochasticDepth(p, "row")``."""
from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """Drop the residual branch of whole samples with probability ``p`` while training, rescaling the kept ones by
    1 / (1 - p); the identity in eval mode (Huang et al. 2016; torchvision's ``StochasticDepth(p, "row")``)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"
