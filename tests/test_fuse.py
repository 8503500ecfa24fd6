"""``netspec.fuse``: batch norms folded into the convolutions before them give the same eval-mode outputs (issue 19).

Every spec in specs/ is built narrow (``scale.width`` 0.25 where it allows) on a small input, with random running
statistics and affine params so that folding is visible, and compared before and after fusing.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm

import netspec

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))
KEPT = {"bam_resnet50": "BAM's channel gate: Linear + BatchNorm1d", "resnest50": "split attention's forward is not "
        "traceable (it iterates over a torch.split)"}
SELF_ATTENTION = "the norm after a self-attention module standing in for the bottleneck's 3x3 conv follows no convolution"
KEPT |= {name: SELF_ATTENTION for name in ("botnet26t", "halonet26t", "lambda_resnet26t", "sebotnet33ts")}
"""Specs where some norms stay, and why (their outputs are still compared)."""


def randomise_norms(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.track_running_stats:
            shape = module.running_mean.shape
            module.running_mean.copy_(torch.rand(shape, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(shape, generator=generator) * 1.5 + 0.5)
            if module.weight is not None:
                with torch.no_grad():
                    module.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                    module.bias.copy_(torch.rand(shape, generator=generator) - 0.5)


def norms(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, _BatchNorm)]


def small(spec: netspec.Spec) -> netspec.Spec:
    size = 64 if spec.input.size is None else min(64, spec.input.size[0])
    resized = spec.model_copy(update={"input": spec.input.model_copy(update={"size": (size, size)})})
    try:  # specs whose position tables or attention blocks need their own size keep it
        netspec.check(resized)
        spec = resized
    except netspec.SpecError:
        pass
    try:
        narrow = spec.with_scale(width=0.25 * (spec.resolved_scale.width if spec.resolved_scale else 1.0))
        netspec.check(narrow)
        return narrow
    except netspec.SpecError:
        return spec


def outputs(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        result = model(x)
    return result if isinstance(result, tuple) else (result,)


LARGEST = {"regnety_016", "regnety_032", "resnet50", "yolo11n", "yolo11n_ca", "triplet_resnet50", "resnest50",
           "yolov8n_seg", "yolov8n", "yolov8n_cbam", "deeplabv3_resnet50", "mobilenet_v2_ca", "nonlocal_resnet50"}
"""Specs whose comparison took 6-14 s on a busy 2-core machine: marked slow (CI runs them in its slow step)."""


@pytest.mark.parametrize("path", [pytest.param(path, id=path.stem, marks=[pytest.mark.slow] if path.stem in LARGEST
                                               else []) for path in SPECS])
def test_fused_spec_computes_the_same_eval_outputs(path: Path) -> None:
    spec = small(netspec.load(path))
    model = netspec.build(spec, seed=0).eval()
    randomise_norms(model)
    x = torch.randn(2, spec.input.channels, *spec.input.size, generator=torch.Generator().manual_seed(1))
    before = outputs(model, x)
    fused = netspec.fuse(copy.deepcopy(model))
    assert fused is not model
    left = norms(fused)
    if path.stem not in KEPT:
        assert left == [], f"norms not folded: {left}"
    if norms(model):  # ConvNeXt normalises with LayerNorm only: nothing to fold, outputs still compared
        assert len(left) < len(norms(model))
    after = outputs(fused, x)
    for expected, got in zip(before, after, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_fuse_is_in_place_and_returns_the_model() -> None:
    model = netspec.build(netspec.loads("input: {channels: 3}\nlayers:\n  - conv: {out: 8}\n"), seed=0).eval()
    assert netspec.fuse(model) is model
    assert norms(model) == []
    conv = model.get_submodule("0.conv") if hasattr(model, "0") else next(m for m in model.modules()
                                                                           if isinstance(m, nn.Conv2d))
    assert conv.bias is not None  # the norm's shift moved into a new bias


def test_fuse_keeps_norms_it_cannot_fold() -> None:
    """A norm whose conv output is also read elsewhere, or that uses batch statistics, stays."""

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 1)
            self.batch_stats = nn.BatchNorm2d(4, track_running_stats=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.bn(y) + y + self.batch_stats(self.conv2(y))

    model = Branchy().eval()
    randomise_norms(model)
    x = torch.randn(2, 3, 8, 8)
    before = outputs(model, x)
    netspec.fuse(model)
    assert isinstance(model.bn, nn.BatchNorm2d) and isinstance(model.batch_stats, nn.BatchNorm2d)
    torch.testing.assert_close(outputs(model, x), before)


def test_fuse_a_plain_graph_module_and_a_traced_module() -> None:
    """Convs followed by norms directly in a GraphModule's graph, and inside a module traced from its forward."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1, groups=3, bias=True)
            self.norm = nn.BatchNorm2d(6)
            self.head = nn.Sequential(nn.Conv2d(6, 5, 1), nn.BatchNorm2d(5), nn.SiLU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.relu(self.norm(self.conv(x))))

    for model in (Block(), fx.symbolic_trace(Block())):
        model.eval()
        randomise_norms(model)
        x = torch.randn(2, 3, 8, 8)
        before = outputs(model, x)
        netspec.fuse(model)
        assert norms(model) == []
        torch.testing.assert_close(outputs(model, x), before, rtol=1e-5, atol=1e-5)


def test_fused_yolov8n_equals_ultralytics_fused_reference() -> None:
    """``netspec.fuse`` of specs/yolov8n.yaml computes what the Ultralytics-layout reference computes after
    Ultralytics' own fusion (``benchmarks/baselines.ultralytics_fuse``: ``fuse_conv_bn_weights``, ``act(conv(x))``)."""
    import sys

    references = pytest.importorskip("ultralytics_references")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        from baselines import ultralytics_fuse
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    reference = references.DetectionModel("yolov8", "n").eval()
    randomise_norms(reference)
    model = netspec.build(Path(__file__).resolve().parent.parent / "specs" / "yolov8n.yaml", seed=0).eval()
    assert netspec.load_weights(model, reference.state_dict(), strict=True).complete
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    expected = outputs(ultralytics_fuse(reference), x)[0]
    fused = netspec.fuse(model)
    assert norms(fused) == []
    torch.testing.assert_close(outputs(fused, x)[0], expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_fuse_a_transposed_conv_and_its_norm() -> None:
    spec = netspec.loads("input: {channels: 3, size: 8}\nlayers:\n  - upconv: {out: 6, norm: batch, act: relu}\n")
    model = netspec.build(spec, seed=0).eval()
    randomise_norms(model)
    x = torch.randn(2, 3, 8, 8)
    before = outputs(model, x)
    netspec.fuse(model)
    assert norms(model) == []
    torch.testing.assert_close(outputs(model, x), before, rtol=1e-5, atol=1e-5)
