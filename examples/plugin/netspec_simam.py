"""A complete netspec plugin: SimAM, a parameter-free attention kind (Yang et al., ICML 2021).

Use it from your own code by importing this module before loading a spec (``@netspec.register`` makes
``my_simam`` a kind), or install it (``pip install -e examples/plugin``): its entry point in the group
``netspec.blocks`` makes netspec load it by itself. Either way ``my_simam`` then works in YAML (``- my_simam``,
``stage: {..., attention: my_simam}``), in ``netspec blocks``, ``netspec schema`` and the summary.
(netspec has SimAM built in as ``simam``; this copy, a teaching example, takes another name.)
"""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field, Strict
from torch import nn

import netspec
from netspec.shapes import Shape, scale_macs


class SimAMModule(nn.Module):
    """x * sigmoid(E_inv), with E_inv = (x - mean)^2 / (4 * (var + lambda)) + 0.5 per channel (official code)."""

    def __init__(self, e_lambda: float) -> None:
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        y = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda)) + 0.5
        return x * torch.sigmoid(y)


@netspec.register
class SimAM(netspec.Attention):
    """SimAM: parameter-free attention; each neuron is weighted by its energy (distance to the channel mean)."""

    kind = "my_simam"
    paper = "Yang, Zhang, Li, Xie. SimAM: A Simple, Parameter-Free Attention Module for CNNs. ICML 2021"

    e_lambda: Annotated[float, Strict(), Field(gt=0)] = 1e-4
    """regulariser lambda of the energy function"""

    # The shape rule. An Attention keeps (N, C, H, W); it only says what does not fit, and what it costs.
    def check(self, x: Shape, ctx: netspec.Context) -> None:
        if x.pixels == 1:
            ctx.error(None, "needs a map larger than 1x1 (the energy divides by H*W - 1)")

    def count(self, channels: int, ctx: netspec.Context) -> int:
        return 0  # no learnable parameters

    def macs_per_sample(self, x: Shape) -> int | None:
        return scale_macs(x.channels, x)  # the gating multiply, once per element

    # The builder: the torch module for input shape x.
    def build(self, x: Shape, ctx: netspec.Context) -> nn.Module:
        return SimAMModule(self.e_lambda)

    # Random valid instances, for property tests that enumerate the registry.
    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and x.pixels != 1

    @classmethod
    def strategy(cls, x: Shape):  # type: ignore[no-untyped-def]
        from hypothesis import strategies as st

        return st.builds(cls, e_lambda=st.floats(1e-6, 1e-2))
