"""Issue: ecosystem. Width/depth scaling as Ultralytics: `scale: {width, depth, max_channels}` and `--width/--depth`."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest
import torch

import netspec
from netspec import cli
from netspec.layers import Conv, Linear, Stage
from netspec.layers.base import Context, Layer
from netspec.registry import KINDS, register, unregister
from netspec.scaling import Channels, Scale, make_divisible, scaled_fields
from netspec.shapes import LayerInfo, Shape

from entry_outputs import assert_static_matches_runtime

ROOT = Path(__file__).resolve().parent.parent

ULTRALYTICS_BUG = """\
input: {channels: 3, size: 32}
scale: {width: 0.5, depth: 0.33, max_channels: 1024}
layers:
  - conv: {out: 1024, stride: 2}
  - cbam
  - se
  - stage: {block: basic, out: 1024, depth: 3, attention: cbam}
  - avgpool
  - linear: {out: 10}
"""


def cbam_params(channels: int, reduction: int = 16) -> int:
    """DESIGN.md section 6: 2C^2/r + C/r + C + 98 + 2."""
    return 2 * channels * channels // reduction + channels // reduction + channels + 98 + 2


def se_params(channels: int, reduction: int = 16) -> int:
    """DESIGN.md section 6: 2C(C/r) + C/r + C."""
    return 2 * channels * (channels // reduction) + channels // reduction + channels


# -- the rounding rules, checked against Ultralytics' published model scales ------------------------------


@pytest.mark.parametrize(
    ("channels", "width", "max_channels", "expected"),
    [
        # yolov8n (depth 0.33, width 0.25, max 1024): 64/128/256/512/1024 -> 16/32/64/128/256
        (64, 0.25, 1024, 16), (128, 0.25, 1024, 32), (256, 0.25, 1024, 64), (1024, 0.25, 1024, 256),
        # yolov8s (0.33, 0.50, 1024) and yolov8m (0.67, 0.75, 768): 1024 -> 512 and 576
        (1024, 0.5, 1024, 512), (1024, 0.75, 768, 576), (512, 0.75, 768, 384),
        # yolov8l (1.00, 1.00, 512) and yolov8x (1.00, 1.25, 512): the last stage has 512 and 640 channels
        (1024, 1.0, 512, 512), (1024, 1.25, 512, 640),
        # rounding up to a multiple of 8, never below 8
        (3, 1.0, None, 8), (100, 0.5, None, 56), (20, 0.1, None, 8),
    ],
)
def test_channels_follow_ultralytics_make_divisible(channels: int, width: float, max_channels: int | None,
                                                    expected: int) -> None:
    assert Scale(width=width, max_channels=max_channels).channels(channels) == expected


@pytest.mark.parametrize(
    ("repeats", "depth", "expected"),
    [(3, 0.33, 1), (6, 0.33, 2), (9, 0.33, 3), (3, 0.67, 2), (6, 0.67, 4), (2, 0.1, 1), (1, 0.33, 1), (4, 1.0, 4)],
)
def test_depths_are_rounded_and_at_least_one(repeats: int, depth: float, expected: int) -> None:
    assert Scale(depth=depth).repeats(repeats) == expected


def test_make_divisible_rounds_up() -> None:
    assert [make_divisible(v) for v in (1, 8, 8.5, 16, 17)] == [8, 8, 16, 16, 24]


# -- which params scale is data on the kinds ---------------------------------------------------------------


def test_scaled_params_are_declared_on_the_params_models() -> None:
    assert scaled_fields(Conv) == {"out": "channels"}
    assert scaled_fields(Stage) == {"out": "channels", "depth": "depth", "width": "channels"}
    assert scaled_fields(Linear) == {}  # the number of classes never scales
    for kind in ("se", "cbam", "eca", "maxpool", "avgpool", "dropout", "flatten"):
        if kind in KINDS:
            assert "out" not in scaled_fields(KINDS[kind]), kind


class _Pointwise(Layer):
    """A 1x1 projection declared outside netspec: its `out` is typed `Channels`, so scaling follows it."""

    kind = "test_pointwise"

    out: Channels

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        return LayerInfo(Shape(self.out, x.height, x.width), x.channels * self.out)

    def build(self, x: Shape, ctx: Context) -> torch.nn.Module:
        return torch.nn.Conv2d(x.channels, self.out, 1, bias=False)


@pytest.fixture
def pointwise() -> Iterator[type[Layer]]:
    register(_Pointwise)
    yield _Pointwise
    unregister(_Pointwise.kind)


def test_a_plugin_kind_scales_without_touching_the_compiler(pointwise: type[Layer]) -> None:
    spec = netspec.loads("input: {channels: 3, size: 8}\nscale: {width: 0.25}\nlayers:\n  - test_pointwise: {out: 256}\n")
    rows = netspec.summary(spec).rows
    assert rows[0].info.shape == Shape(64, 8, 8)
    assert netspec.build(spec)[0].out_channels == 64


# -- the Ultralytics bug: attention after a scaled conv gets the scaled channels ----------------------------


def test_attention_after_a_scaled_conv_gets_the_scaled_channels() -> None:
    spec = netspec.loads(ULTRALYTICS_BUG)
    rows = {row.name: row for row in netspec.summary(spec).rows}
    assert rows["conv1"].info.shape.channels == 512  # 1024 * 0.5
    assert rows["cbam1"].input.channels == 512  # Ultralytics builds CBAM(1024) here
    assert rows["cbam1"].info.params == cbam_params(512)
    assert rows["se1"].info.params == se_params(512)
    model = netspec.build(spec)
    cbam_convs = [m for m in model.cbam1.modules() if isinstance(m, torch.nn.Conv2d)]
    assert cbam_convs[0].in_channels == 512
    assert sum(p.numel() for p in model.cbam1.parameters()) == cbam_params(512)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_attention_inside_a_scaled_stage_follows_it() -> None:
    spec = netspec.loads(ULTRALYTICS_BUG)
    stage = netspec.summary(spec).rows[3]
    assert stage.layer.out == 512 and stage.layer.depth == 1  # 1024 * 0.5; max(round(3 * 0.33), 1)
    model = netspec.build(spec)
    assert len(model.stage1) == 1
    attention = [m for m in model.stage1.modules() if type(m).__name__ == "CBAM"]
    assert len(attention) == 1
    assert sum(p.numel() for p in attention[0].parameters()) == cbam_params(512)


def test_linear_out_is_the_number_of_classes_and_never_scales() -> None:
    spec = netspec.loads(ULTRALYTICS_BUG)
    assert netspec.summary(spec).output == Shape(10, flat=True)
    assert netspec.build(spec)[-1].out_features == 10


# -- whole networks -----------------------------------------------------------------------------------------


def halved_resnet50() -> str:
    """specs/resnet50.yaml with every channel count halved and the depths [3, 4, 6, 3] -> [2, 2, 3, 2] by hand."""
    return """\
input: {channels: 3, size: 224}
layers:
  - conv: {out: 32, kernel: 7, stride: 2}
  - maxpool: {kernel: 3, stride: 2}
  - stage: {block: bottleneck, out: 128, depth: 2}
  - stage: {block: bottleneck, out: 256, depth: 2, stride: 2}
  - stage: {block: bottleneck, out: 512, depth: 3, stride: 2}
  - stage: {block: bottleneck, out: 1024, depth: 2, stride: 2}
  - avgpool
  - linear: {out: 1000}
"""


def test_scaled_resnet50_equals_the_hand_scaled_spec() -> None:
    scaled = netspec.load(ROOT / "specs" / "resnet50.yaml").with_scale(width=0.5, depth=0.5)
    by_hand = netspec.loads(halved_resnet50())
    assert [row.info for row in netspec.summary(scaled).rows] == [row.info for row in netspec.summary(by_hand).rows]
    model = netspec.build(scaled)
    assert sum(p.numel() for p in model.parameters()) == netspec.summary(by_hand).params


def test_the_summary_shows_the_scaled_network_and_the_model_agrees() -> None:
    spec = netspec.loads(ULTRALYTICS_BUG)
    summary = netspec.summary(spec)
    model = netspec.build(spec).eval()
    x = torch.randn(1, 3, 32, 32)
    for row, module in zip(summary.rows, model):
        x = module(x)
        assert tuple(x.shape[1:]) == row.info.shape.dims(), row.name
        assert sum(p.numel() for p in module.parameters()) == row.info.params, row.name
    assert "(N, 512, 16, 16)" in str(summary)


# A graph written at full width: attention after a merge, a gate computed in its own branch, concat and add.
GRAPH = """\
input: {channels: 3, size: 32}
scale: {width: 0.5, depth: 0.33, max_channels: 512}
layers:
  - conv: {out: 64, stride: 2}
    name: stem
  - stage: {block: basic, out: 1024, depth: 3, stride: 2, attention: se}
    name: deep
  - cbam: {}
  - upsample: {to: stem}
    name: up
  - concat: {}
    from: [stem, up]
  - se: {}
    name: fused
  - avgpool: {size: 1}
    from: deep
  - conv: {out: 1024, kernel: 1, norm: none, act: sigmoid}
    name: gate
  - mul: {}
    from: [cbam1, gate]
  - upconv: {out: 64}
  - add: {}
    from: [upconv1, stem]
    name: sum
  - concat: {}
    from: [fused, sum]
outputs: [concat2, mul1]
"""


def test_a_scaled_graph_equals_the_hand_scaled_graph_and_merges_follow() -> None:
    """Scaling a graph scales its layers' channels; attention, merges and the gate's product follow them."""
    spec = netspec.loads(GRAPH)
    by_hand = netspec.loads(GRAPH.replace("scale: {width: 0.5, depth: 0.33, max_channels: 512}\n", "")
                            .replace("out: 64", "out: 32").replace("out: 1024, depth: 3", "out: 256, depth: 1")
                            .replace("out: 1024", "out: 256"))
    rows = {row.name: row for row in netspec.summary(spec).rows}
    assert [row.info for row in rows.values()] == [row.info for row in netspec.summary(by_hand).rows]
    assert rows["deep"].info.shape.channels == 256  # min(1024, 512) * 0.5
    assert rows["deep"].layer.depth == 1  # max(round(3 * 0.33), 1)
    assert rows["cbam1"].info.params == cbam_params(256)  # Ultralytics would build CBAM(1024) here
    assert rows["concat1"].info.shape.channels == 32 + 256
    assert rows["fused"].info.params == se_params(32 + 256)
    assert rows["mul1"].info.shape == Shape(256, 8, 8)  # the gate's conv scaled as the map it gates
    assert rows["concat2"].info.shape == Shape(288 + 32, 16, 16)
    model = netspec.build(spec)
    assert sum(p.numel() for p in model.parameters()) == netspec.summary(by_hand).params
    assert_static_matches_runtime(spec, model)


def test_max_channels_caps_before_width() -> None:
    spec = netspec.loads("input: {channels: 3, size: 8}\nscale: {width: 1.25, max_channels: 512}\n"
                         "layers:\n  - conv: {out: 1024}\n  - conv: {out: 256}\n")
    assert [row.info.shape.channels for row in netspec.summary(spec).rows] == [640, 320]


def test_without_scale_nothing_changes() -> None:
    spec = netspec.loads("input: {channels: 3, size: 8}\nlayers:\n  - conv: {out: 3}\n  - stage: {out: 12, depth: 3}\n")
    assert spec.scale is None
    assert spec.scaled_layers() == spec.layers
    rows = netspec.summary(spec).rows
    assert rows[0].info.shape.channels == 3 and rows[1].layer.depth == 3


# -- the spec: round trip, validation, Python API -----------------------------------------------------------


def test_round_trip_keeps_scale() -> None:
    spec = netspec.loads(ULTRALYTICS_BUG)
    text = spec.to_yaml()
    assert "scale: {width: 0.5, depth: 0.33, max_channels: 1024}" in text
    again = netspec.loads(text)
    assert again == spec and again.scale == Scale(width=0.5, depth=0.33, max_channels=1024)
    assert spec.layers[0].out == 1024  # the spec keeps what the user wrote; scaling happens when compiling


def test_round_trip_keeps_an_all_default_scale() -> None:
    spec = netspec.loads("input: {channels: 3}\nscale: {}\nlayers: [se]\n")
    assert spec.scale == Scale()
    assert netspec.loads(spec.to_yaml()) == spec


def test_with_scale_overrides_width_and_depth_and_keeps_the_rest() -> None:
    spec = netspec.loads(ULTRALYTICS_BUG)
    wider = spec.with_scale(width=1.0)
    assert wider.scale == Scale(width=1.0, depth=0.33, max_channels=1024)
    assert spec.scale == Scale(width=0.5, depth=0.33, max_channels=1024)  # a copy
    assert netspec.summary(wider).rows[0].info.shape.channels == 1024
    assert netspec.loads("input: {channels: 3}\nlayers: [se]\n").with_scale(depth=0.5).scale == Scale(depth=0.5)


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ("{width: 0}", "scale.width: input should be greater than 0"),
        ("{depth: -1}", "scale.depth: input should be greater than 0"),
        ("{width: '0.5'}", "scale.width: input should be a valid number"),
        ("{widht: 0.5}", "scale.widht: unknown field 'widht' (did you mean 'width'?)"),
        ("{max_channels: 0}", "scale.max_channels: input should be greater than or equal to 1"),
        ("0.5", "scale: "),
    ],
)
def test_a_bad_scale_is_a_located_error(scale: str, message: str) -> None:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.loads(f"input: {{channels: 3}}\nscale: {scale}\nlayers: [se]\n", name="s.yaml")
    assert len(caught.value.problems) == 1
    assert str(caught.value.problems[0]).startswith(f"s.yaml:2:")
    assert message in str(caught.value.problems[0])


def test_a_problem_caused_by_scaling_points_at_the_layer() -> None:
    text = "input: {channels: 3, size: 8}\nscale: {width: 0.5}\nlayers:\n  - conv: {out: 64}\n  - se: {reduction: 64}\n"
    netspec.check(netspec.loads(text).with_scale(width=1.0))
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.loads(text, name="s.yaml"))
    assert [str(p) for p in caught.value.problems] == [
        "s.yaml:5:21: layers[1].se.reduction: must be <= 32 (the input has 32 channels)"
    ]


# -- the CLI: --width / --depth override the spec's scale ---------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_width_and_depth_override(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(ULTRALYTICS_BUG)
    code, out, err = run_cli(capsys, "check", str(path))
    assert code == 0, err
    half = netspec.summary(netspec.loads(ULTRALYTICS_BUG)).params
    assert f"{half:,} params" in out
    full = netspec.summary(netspec.loads(ULTRALYTICS_BUG).with_scale(width=1.0, depth=1.0)).params
    code, out, err = run_cli(capsys, "check", "--width", "1", "--depth", "1", str(path))
    assert code == 0, err
    assert f"{full:,} params" in out and full > half


def test_build_width_on_a_spec_without_scale(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "build", str(ROOT / "specs" / "resnet50.yaml"), "--width", "0.5", "--depth", "0.5")
    assert code == 0, err
    by_hand = netspec.summary(netspec.loads(halved_resnet50()))
    assert f"total params: {by_hand.params:,}" in out
    assert re.search(r"stage4\s+stage\s+\(N, 1024, 7, 7\)", out)
    code, out, err = run_cli(capsys, "build", "--json", "--width", "0.5", str(ROOT / "specs" / "resnet50.yaml"))
    assert code == 0, err
    layers = {layer["name"]: layer for layer in json.loads(out)["layers"]}
    assert layers["stage4"]["output"] == [1024, 7, 7] and layers["linear1"]["output"] == [1000]


@pytest.mark.parametrize("value", ["0", "-0.5", "abc", "nan", "inf"])
def test_a_bad_width_is_a_usage_error(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["check", "--width", value, str(ROOT / "specs" / "resnet18.yaml")])
    assert caught.value.code == 2
    assert "--width" in capsys.readouterr().err
