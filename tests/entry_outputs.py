"""Run a built model and compare the output of EVERY entry (not only the last) with its static shape.

Shared by the property and robustness tests; works for an ``nn.Sequential`` and a ``torch.fx.GraphModule``
alike: a forward hook on each top-level child (one per entry) records what it returns.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from netspec.compiler import INPUT, infer_network, input_shape
from netspec.spec import Spec


def run_recording(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], Any]:
    """``model(x)`` without gradients, and each top-level child's output by name, in the order they ran."""
    outputs: dict[str, torch.Tensor] = {}

    def recorder(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            assert name not in outputs, f"{name} ran twice"
            outputs[name] = output
        return hook

    handles = [child.register_forward_hook(recorder(name)) for name, child in model.named_children()]
    try:
        with torch.no_grad():
            result = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return outputs, result


def assert_static_matches_runtime(spec: Spec, model: nn.Module, *, batch: int = 2) -> None:
    """Every entry's runtime output shape equals its static one, and the model returns the spec's ``outputs``."""
    network = infer_network(spec)
    assert isinstance(model, torch.fx.GraphModule if network.graph else nn.Sequential), type(model)
    x = torch.randn(batch, *input_shape(spec).dims())
    if any(row.info.shape.sequence for row in network.rows):
        model.eval()  # a detection head's static (N, C, A) is its eval output (in training it returns a dict)
    seen, result = run_recording(model, x)
    assert list(seen) == [row.name for row in network.rows], "the entries ran in another order, or some did not"
    for row in network.rows:
        output = seen[row.name]
        if row.info.shape.sequence and isinstance(output, tuple):  # a head's (detections, extras): the detections
            output = output[0]
        assert tuple(output.shape) == (batch, *row.info.shape.dims()), \
            f"{row.name} ({row.kind}) from {row.inputs}: static {row.info.shape}, runtime {tuple(output.shape)}"
    returned = result if len(network.outputs) > 1 else (result,)
    assert isinstance(returned, tuple) and len(returned) == len(network.outputs)
    for name, tensor in zip(network.outputs, returned):
        assert tensor is (x if name == INPUT else seen[name]), f"output {name!r} is not that entry's output"
