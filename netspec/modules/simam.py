"""SimAM (Yang, Zhang, Li, Xie, ICML 2021; official code ZjjConan/SimAM, simam_module)."""
from __future__ import annotations

import torch
from torch import nn


class SimAM(nn.Module):
    """x * sigmoid(d / (4 (sum(d) / (HW - 1) + lambda)) + 0.5), d = (x - mean_hw(x))^2: parameter-free."""

    def __init__(self, *, e_lambda: float) -> None:
        super().__init__()
        self.e_lambda = e_lambda

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse energy 1/e* of every neuron (before the sigmoid)."""
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        return d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda)) + 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.energy(x))

    def extra_repr(self) -> str:
        return f"e_lambda={self.e_lambda}"
