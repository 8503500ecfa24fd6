"""Issue 19: YOLO end to end. The Detect head, YOLO11's blocks, every v5u/v8/11 scale at Ultralytics' counts.

Counts are Ultralytics 8.4's (``nc: 80``). Function: ``ultralytics_references`` (Ultralytics' layout, checked
against the real package by a throwaway script) gets random weights, ``netspec.load_weights`` copies them into
netspec's model (every tensor matched, in order), and the outputs are compared in training mode (the raw dict)
and in eval mode (the decoded tensor), on a non-square input.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import netspec
import network_references as reference
import ultralytics_references as ultra
from netspec.shapes import Shape
from official_attention import CoordAtt

SPECS = Path(__file__).resolve().parent.parent / "specs"

COUNTS = {  # Ultralytics 8.4, nc 80, scales n, s, m, l, x
    "yolov8n.yaml": (3_157_200, 11_166_560, 25_902_640, 43_691_520, 68_229_648),
    "yolo11n.yaml": (2_624_080, 9_458_752, 20_114_688, 25_372_160, 56_966_176),
    "yolov5n.yaml": (2_654_816, 9_153_152, 25_111_456, 53_225_024, 97_276_448),
    "yolo11n_seg.yaml": (2_876_848, 10_113_248, 22_420_896, 27_678_368, 62_142_656),
    "yolov8n_seg.yaml": (3_409_968, 11_821_056, 27_285_968, 45_997_728, 71_827_888),  # s-x: the real package's
}
CBAM_256 = 8_564  # 2C²/r + C/r + C + 98 + 2 at C = 256
COORD_256 = 3 * 256 * 8 + 2 * 8 + 8 + 2 * 256  # official CoordAtt, mip = max(8, 256 // 32)
SINGLE = {"yolov8n_cbam.yaml": 3_157_200 + CBAM_256, "yolo11n_ca.yaml": 2_624_080 + COORD_256}
SIZE = (96, 128)  # non-square: 12x16, 6x8, 3x4 levels, 252 anchor points


@pytest.mark.parametrize("file", sorted(COUNTS))
@pytest.mark.parametrize("index,scale", list(enumerate("nsmlx")))
def test_every_scale_has_ultralytics_count(file: str, index: int, scale: str) -> None:
    spec = netspec.load(SPECS / file)
    assert netspec.summary(spec.at_scale(scale)).params == COUNTS[file][index]


@pytest.mark.parametrize("file", sorted(SINGLE))
def test_attention_detectors_count(file: str) -> None:
    assert netspec.summary(netspec.load(SPECS / file)).params == SINGLE[file]


def test_default_scale_is_n_and_the_cli_picks_another(capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    assert netspec.summary(netspec.load(SPECS / "yolov8n.yaml")).params == COUNTS["yolov8n.yaml"][0]
    assert main(["build", str(SPECS / "yolov8n.yaml"), "--scale", "s"]) == 0
    assert "total params: 11,166,560" in capsys.readouterr().out
    assert main(["build", str(SPECS / "yolov8n.yaml"), "--scale", "q"]) != 0
    assert "unknown scale 'q'" in capsys.readouterr().err


def test_c3k_is_forced_at_m_l_x_and_the_summary_says_so() -> None:
    spec = netspec.load(SPECS / "yolo11n.yaml")
    for scale in "nsmlx":
        scaled = spec.at_scale(scale)
        flags = [layer.c3k for layer in scaled.scaled_layers() if layer.kind == "c3k2"]
        assert flags == ([True] * 8 if scale in "mlx" else [False, False, True, True, False, False, False, True])
        notes = netspec.summary(scaled).notes
        assert bool(notes) == (scale in "mlx")
        assert str(netspec.summary(scaled)).count("c3k true at scale") == (scale in "mlx")
    assert [layer.c3k for layer in spec.layers if layer.kind == "c3k2"].count(True) == 3  # the spec as written


def test_kernels_classes_and_reg_max_never_scale() -> None:
    spec = netspec.load(SPECS / "yolov5n.yaml").at_scale("x")
    layers = spec.scaled_layers()
    assert (layers[0].kernel, layers[0].out) == (6, 80)
    head = layers[-1]
    assert (head.classes, head.reg_max) == (80, 16)


# --- the same function as Ultralytics' models ---------------------------------------------------------------

FUNCTION = {  # spec -> Ultralytics-layout reference at scale n
    "yolov8n.yaml": lambda: ultra.DetectionModel("yolov8"),
    "yolo11n.yaml": lambda: ultra.DetectionModel("yolo11"),
    "yolov5n.yaml": lambda: ultra.DetectionModel("yolov5"),
    "yolov8n_cbam.yaml": lambda: ultra.DetectionModel("yolov8", insert={9: reference.baselines.CBAMBaseline}),
    "yolo11n_ca.yaml": lambda: ultra.DetectionModel("yolo11", insert={10: lambda c: CoordAtt(c, c)}),
    "yolov8n_seg.yaml": lambda: ultra.DetectionModel("yolov8", head="Segment"),
    "yolo11n_seg.yaml": lambda: ultra.DetectionModel("yolo11", head="Segment"),
}
SEGMENT_KEYS = {"boxes", "scores", "feats", "mask_coefficient", "proto"}


def loaded_pair(file: str, spec: netspec.Spec | None = None) -> tuple[torch.nn.Module, torch.nn.Module]:
    theirs = reference.randomize(FUNCTION[file]())
    ours = netspec.build(spec if spec is not None else netspec.load(SPECS / file))
    report = netspec.load_weights(ours, theirs.state_dict(), strict=True)
    assert report.complete and len(report.matched) > 100
    assert len(ours.state_dict()) == len(theirs.state_dict())
    return ours.double(), theirs.double()


@pytest.mark.slow
@pytest.mark.parametrize("file", sorted(FUNCTION))
def test_detector_computes_what_ultralytics_computes(file: str) -> None:
    ours, theirs = loaded_pair(file)
    x = torch.randn(2, 3, *SIZE, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    segment = file.endswith("_seg.yaml")
    with torch.no_grad():
        expected, got = theirs.train()(x), ours.train()(x)
        assert set(got) == set(expected) == (SEGMENT_KEYS if segment else {"boxes", "scores", "feats"})
        assert got["boxes"].shape == (2, 64, 252) and got["scores"].shape == (2, 80, 252)
        for key in sorted(set(got) - {"feats"}):
            torch.testing.assert_close(got[key], expected[key], rtol=1e-9, atol=1e-9)
        for a, b in zip(got["feats"], expected["feats"], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        (decoded, _), got = theirs.eval()(x), ours.eval()(x)
    if segment:  # (detections, protos) both sides
        (decoded, protos), (got, got_protos) = decoded, got
        assert got_protos.shape == (2, 32, 24, 32)
        torch.testing.assert_close(got_protos, protos, rtol=1e-9, atol=1e-9)
    assert got.shape == (2, 84 + 32 * segment, 252)
    assert decoded[:, :4].abs().max() > 10  # boxes in input pixels: the comparison can fail
    torch.testing.assert_close(got, decoded, rtol=1e-9, atol=1e-7)


def test_detector_bias_init_and_strides_are_ultralytics() -> None:
    ours = netspec.build(netspec.load(SPECS / "yolov8n.yaml"))
    theirs = ultra.DetectionModel("yolov8")
    head = ours.detect
    assert head.stride.tolist() == theirs.model[-1].stride.tolist() == [8.0, 16.0, 32.0]
    for branch in ("cv2", "cv3"):
        for a, b in zip(getattr(head, branch), getattr(theirs.model[-1], branch)):
            torch.testing.assert_close(a[-1].bias, b[-1].bias)
    assert head.cv3[0][-1].bias[0].item() == pytest.approx(math.log(5 / 80 / (640 / 8) ** 2))


def test_anchors_follow_the_actual_input_size() -> None:
    """Built at 640 x 640, run at 64 x 96 and 128 x 64: A and the box centres follow the input actually given."""
    model = netspec.build(netspec.load(SPECS / "yolov5n.yaml")).eval()
    for height, width in ((64, 96), (128, 64)):
        with torch.no_grad():
            y = model(torch.randn(1, 3, height, width))
        anchors = sum((height // s) * (width // s) for s in (8, 16, 32))
        assert y.shape == (1, 84, anchors)
        assert 0 < y[0, 0].min() and y[0, 0].max() < 2 * width  # centre x within reach of the image


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["m"])
def test_yolo11_at_larger_scales_computes_what_ultralytics_computes(scale: str) -> None:
    """Scale m: C3k blocks everywhere, max_channels 512, C2PSA with 4 heads. Eval only, a 64 x 64 input."""
    spec = netspec.load(SPECS / "yolo11n.yaml").at_scale(scale)
    theirs = reference.randomize(ultra.DetectionModel("yolo11", scale))
    ours = netspec.build(spec)
    assert netspec.load_weights(ours, theirs.state_dict(), strict=True).complete
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        (expected, _), got = theirs.eval()(x), ours.eval()(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3)


# --- shapes, summaries, errors -------------------------------------------------------------------------------


def test_summary_shows_the_decoded_output() -> None:
    summary = netspec.summary(netspec.load(SPECS / "yolov8n.yaml"))
    assert summary.output == Shape.of_length(84, 8400)
    assert str(summary.output) == "(N, 84, 8400)"
    assert "scale:        n (depth 0.33, width 0.25, max_channels 1024)" in str(summary)
    assert summary.to_dict()["output"] == [84, 8400]


def test_detect_takes_any_number_of_levels() -> None:
    spec = netspec.loads("""
input: {channels: 3, size: [64, 96]}
layers:
  - conv: {out: 8, stride: 2}
    name: p1
  - conv: {out: 16, stride: 2}
    name: p2
  - detect: {classes: 3, reg_max: 4, legacy: false}
    from: [p1, p2]
""")
    model = netspec.build(spec).eval()
    assert netspec.summary(spec).output.dims() == (7, 32 * 48 + 16 * 24)
    assert model.detect1.stride.tolist() == [2.0, 4.0]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 7, 32 * 48 + 16 * 24)


def test_reading_a_detect_output_is_a_located_error() -> None:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(netspec.loads("input: {channels: 3, size: 32}\nlayers:\n  - conv: {out: 8, stride: 2}\n"
                                      "  - detect: {classes: 2}\n  - se\n", name="d.yaml"))
    assert "d.yaml:5:5" in str(caught.value) and "ends the network" in str(caught.value)


def test_detect_needs_the_input_size() -> None:
    with pytest.raises(netspec.SpecError, match="needs the spec's input.size"):
        netspec.summary(netspec.loads("input: {channels: 3}\nlayers:\n  - conv: {out: 8}\n  - detect: {classes: 2}\n"))


def test_c2psa_keeps_the_width() -> None:
    with pytest.raises(netspec.SpecError, match="must equal the input channels"):
        netspec.summary(netspec.loads("input: {channels: 3, size: 8}\nlayers:\n  - conv: {out: 64}\n"
                                      "  - c2psa: {out: 32}\n"))


def test_psa_equals_ultralytics_attention_at_a_large_map() -> None:
    """PSABlock on 128 channels (2 heads) at 48x48 (2,304 positions): netspec's bounded attention == the
    reference's full score matrix, forward and backward."""
    from netspec.layers import PSA

    ours = PSA().build(Shape(128, 48, 48), netspec.Context(norm="batch", act="silu"))
    theirs = reference.randomize(ultra.PSABlock(128, attn_ratio=0.5, num_heads=2))
    reference.copy_by_order(theirs, ours)
    x = torch.randn(1, 128, 48, 48, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    a, b = ours.eval()(x), theirs.eval()(x2)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    a.square().sum().backward()
    b.square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(("text", "make"), [
    ("c2: {out: 32, depth: 2, shortcut: false}", lambda: ultra.C2(16, 32, 2, False)),
    ("c2: {out: 16, depth: 1}", lambda: ultra.C2(16, 16, 1, True)),
    ("ghostconv: {out: 32, kernel: 3, stride: 2}", lambda: ultra.GhostConv(16, 32, 3, 2)),
    ("ghostconv: {out: 24}", lambda: ultra.GhostConv(16, 24)),
    ("c3ghost: {out: 32, depth: 2}", lambda: ultra.C3Ghost(16, 32, 2)),
])
def test_c2_and_ghost_kinds_are_ultralytics_modules(text: str, make) -> None:
    """yolov8-p6's C2 and yolov8-ghost's GhostConv / C3Ghost: the same count, tensors in the same order, the same
    function (train and eval) as the Ultralytics-layout modules."""
    spec = netspec.loads(f"input: {{channels: 16, size: 12}}\ndefaults: {{norm: batch, act: silu}}\nlayers:\n  - {text}\n")
    model = netspec.build(spec)
    theirs = reference.randomize(make())
    assert netspec.check(spec).params == sum(p.numel() for p in theirs.parameters())
    assert netspec.load_weights(model, theirs.state_dict(), strict=True).complete
    x = torch.randn(2, 16, 12, 12)
    for train in (True, False):
        model.train(train)
        theirs.train(train)
        torch.testing.assert_close(model(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_c3ghost_rejects_what_its_bottleneck_cannot_do() -> None:
    with pytest.raises(netspec.SpecError, match="always residual"):
        netspec.check(netspec.loads("input: {channels: 8, size: 8}\nlayers:\n  - c3ghost: {out: 16, shortcut: false}\n"))
    with pytest.raises(netspec.SpecError, match="multiple of 4"):
        netspec.check(netspec.loads("input: {channels: 8, size: 8}\nlayers:\n  - c3ghost: {out: 12}\n"))
