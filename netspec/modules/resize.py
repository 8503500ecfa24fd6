"""Resizing for graph specs: ``upsample`` by a factor, or to the spatial size of a reference tensor."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Resize(nn.Module):
    """``F.interpolate`` by ``scale`` (as ``nn.Upsample(scale_factor=...)``), or to ``reference``'s H x W."""

    def __init__(self, *, scale: int | None, mode: str, align_corners: bool | None) -> None:
        super().__init__()
        self.scale = scale
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        if reference is not None:
            return F.interpolate(x, size=reference.shape[-2:], mode=self.mode, align_corners=self.align_corners)
        return F.interpolate(x, scale_factor=float(self.scale or 1), mode=self.mode, align_corners=self.align_corners)

    def extra_repr(self) -> str:
        target = f"scale={self.scale}" if self.scale is not None else "size=reference"
        return f"{target}, mode={self.mode!r}" + (f", align_corners={self.align_corners}" if self.align_corners else "")
