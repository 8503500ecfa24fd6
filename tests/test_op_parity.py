"""Issue 25: netspec's networks run the operators the official packages run, so that speed compares like with like.

Timings on a loaded machine swing by more than the gaps they are meant to show; the operators a step dispatches do
not. These tests record them with ``torch.profiler`` (name and input shapes of every ``aten`` op) and compare a
training step (forward and backward) of netspec's network with its official-layout reference.

- ``silu``: ``silu_``'s backward needs the input it overwrites, so an in-place SiLU under autograd saves a full
  copy first (an ``aten::clone`` of every activated map). netspec's SiLU runs in place only without autograd.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import netspec
import network_references as reference
import ultralytics_references as ultra
from netspec.ops import make_act

SPECS = Path(__file__).resolve().parent.parent / "specs"


def total(out: object) -> torch.Tensor:
    """A scalar from any output (a tensor, a tuple of them, Ultralytics' training dict)."""
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return sum((total(part) for part in out), torch.zeros(()))
    assert isinstance(out, torch.Tensor)
    return out.sum()


def ops_of_a_training_step(model: torch.nn.Module, x: torch.Tensor) -> Counter[tuple[str, str]]:
    """Every aten op (name, input shapes) one forward + backward dispatches, with its count."""
    model.train()
    total(model(x)).backward()  # warm-up: lazily created buffers and state
    model.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        total(model(x)).backward()
    return Counter((event.name, str(event.input_shapes)) for event in prof.events() if event.name.startswith("aten::"))


def test_silu_runs_in_place_only_without_autograd() -> None:
    act = make_act("silu")
    assert isinstance(act, torch.nn.SiLU) and act.inplace
    x = torch.randn(2, 3, 4, 4)
    expected = torch.nn.functional.silu(x)
    with torch.no_grad():
        y = x.clone()
        assert act(y) is y and torch.equal(y, expected)  # in place: no new map
    leaf = x.clone().requires_grad_()
    y = leaf * 1.0
    out = act(y)
    assert out is not y and torch.equal(y, leaf) and torch.equal(out, expected)  # out of place: y is kept as is
    out.sum().backward()
    assert torch.allclose(leaf.grad, torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))))


def test_silu_training_step_copies_nothing() -> None:
    model = netspec.build(netspec.loads("input: {channels: 3, size: 16}\ndefaults: {norm: batch, act: silu}\n"
                                        "layers:\n  - conv: {out: 8, kernel: 3}\n  - conv: {out: 8, kernel: 3}\n"))
    ops = ops_of_a_training_step(model, torch.randn(2, 3, 16, 16))
    names = Counter(name for name, _ in ops.elements())
    assert names["aten::silu"] == 2 and names["aten::silu_"] == 0 and names["aten::clone"] == 0


FEATURE_MAP_OPS = {"aten::convolution", "aten::convolution_backward", "aten::native_batch_norm",
                   "aten::native_batch_norm_backward", "aten::silu", "aten::silu_", "aten::silu_backward", "aten::clone",
                   "aten::copy_", "aten::cat", "aten::add", "aten::add_", "aten::max_pool2d_with_indices",
                   "aten::upsample_nearest2d"}
"""The ops that read or write whole feature maps (what a step's time is made of), by name."""


def yolo_pair(file: str, family: str) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    theirs = reference.randomize(ultra.DetectionModel(family))
    ours = netspec.build(SPECS / file)
    netspec.load_weights(ours, theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    return ops_of_a_training_step(ours, x), ops_of_a_training_step(theirs, x)


@pytest.mark.slow
@pytest.mark.parametrize("file,family", [("yolov8n.yaml", "yolov8"), ("yolov5n.yaml", "yolov5")])
def test_yolo_training_step_runs_exactly_ultralytics_ops(file: str, family: str) -> None:
    got, expected = yolo_pair(file, family)
    extra, missing = got - expected, expected - got
    assert not extra and not missing, f"ops only netspec runs: {dict(extra)}; ops only the reference runs: {dict(missing)}"


@pytest.mark.slow
def test_yolo11_training_step_runs_ultralytics_feature_map_ops() -> None:
    """YOLO11's C2PSA attention reshapes its small P5 tokens its own way (netspec's shared attention); every
    feature-map op matches in kind and count."""
    got, expected = yolo_pair("yolo11n.yaml", "yolo11")
    ours = Counter(name for name, _ in got.elements() if name in FEATURE_MAP_OPS)
    theirs = Counter(name for name, _ in expected.elements() if name in FEATURE_MAP_OPS)
    assert ours == theirs and ours["aten::convolution"] > 80
