"""A complete netspec plugin: SimAM, a parameter-free attention kind (Yang et al., ICML 2021).

Use it from your own code by importing this module before loading a spec (``@netspec.register`` makes
``my_simam`` a kind), try it with ``netspec --plugin examples/plugin/netspec_simam.py check spec.yaml``, or install
it (``pip install -e examples/plugin``): its entry point in the group ``netspec.blocks`` makes netspec load it by
itself, the first time a spec uses ``my_simam``. Either way ``my_simam`` then works in YAML (``- my_simam``,
``stage: {..., attention: my_simam}``), in ``netspec blocks``, ``netspec schema`` and the summary.

torch is imported only when a model is built (``SimAMModule`` is defined on first use), so that ``netspec check``
stays fast with the plugin installed.
(netspec has SimAM built in as ``simam``; this copy, a teaching example, takes another name.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, Strict

import netspec
from netspec.shapes import Shape, scale_macs

if TYPE_CHECKING:
    from torch import nn


def _define_module() -> type:
    import torch
    from torch import nn

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

    SimAMModule.__module__, SimAMModule.__qualname__ = __name__, "SimAMModule"  # picklable as netspec_simam.SimAMModule
    return SimAMModule


def __getattr__(name: str) -> Any:
    """``SimAMModule`` on first use (PEP 562), so that importing the plugin does not import torch."""
    if name == "SimAMModule":
        globals()[name] = _define_module()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    # The builder: the torch module for input shape x (torch is imported here, not when the plugin is).
    def build(self, x: Shape, ctx: netspec.Context) -> "nn.Module":
        return __getattr__("SimAMModule")(self.e_lambda)

    # Random valid instances, for property tests that enumerate the registry.
    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and x.pixels != 1

    @classmethod
    def strategy(cls, x: Shape):  # type: ignore[no-untyped-def]
        from hypothesis import strategies as st

        return st.builds(cls, e_lambda=st.floats(1e-6, 1e-2))
