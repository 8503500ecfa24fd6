"""Issue 15 on the networks of issues 11 and 12: torchvision-layout state dicts load by architecture.

The references are the plain-torch builds in torchvision's module order (tests/torchvision_mobilenets.py,
tests/network_references.py); ``netspec.load_weights`` must match every tensor and give the same outputs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch
from torch import nn

import netspec
from network_references import DeepLabV3, randomize
from torchvision_mobilenets import EfficientNetB0, MobileNetV3

SPECS = Path(__file__).resolve().parent.parent / "specs"

CASES: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "mobilenet_v3_large.yaml": (lambda: MobileNetV3("large"), 64),
    "efficientnet_b0.yaml": (EfficientNetB0, 64),
    "deeplabv3_resnet50.yaml": (DeepLabV3, 64),
}


@pytest.mark.slow
@pytest.mark.parametrize("file", sorted(CASES))
def test_a_torchvision_layout_state_dict_loads_completely_and_computes_the_same(file: str) -> None:
    make, size = CASES[file]
    torch.manual_seed(0)
    reference = randomize(make()).eval()
    model = netspec.build(netspec.load(SPECS / file))
    report = netspec.load_weights(model, reference.state_dict(), strict=True)
    assert report.complete and not report.new and not report.unused and not report.mismatched
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected, got = reference(x), model.eval()(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_deeplab_aux_classifier_in_the_source_is_reported_unused() -> None:
    """torchvision's `deeplabv3_resnet50(aux_loss=True)` checkpoints carry `aux_classifier.*`: reported, not loaded."""
    reference = randomize(DeepLabV3()).eval()
    source = dict(reference.state_dict())
    source.update({"aux_classifier.0.weight": torch.randn(256, 1024, 3, 3), "aux_classifier.1.weight": torch.ones(256),
                   "aux_classifier.1.bias": torch.zeros(256), "aux_classifier.1.running_mean": torch.zeros(256),
                   "aux_classifier.1.running_var": torch.ones(256),
                   "aux_classifier.4.weight": torch.randn(21, 256, 1, 1), "aux_classifier.4.bias": torch.zeros(21)})
    model = netspec.build(netspec.load(SPECS / "deeplabv3_resnet50.yaml"))
    report = netspec.load_weights(model, source)
    assert not report.new and not report.mismatched
    assert report.unused and all("aux_classifier" in str(item) for item in report.unused)
