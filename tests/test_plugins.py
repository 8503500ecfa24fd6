"""Issue: ecosystem. Plugins: a kind registered from user code or an installed package (entry point group
`netspec.blocks`) works in YAML, the schema, `netspec blocks`, the summary and the built model."""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import tomllib
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import jsonschema
import pytest
import torch
import yaml

import netspec
from netspec import cli, registry
from netspec.layers.base import Context, Layer, describe_inputs
from netspec.registry import FAILED_PLUGINS, KINDS, PluginWarning, builtin_kinds, load_plugins, register, unregister
from netspec.scaling import Channels
from netspec.schema import spec_schema
from netspec.shapes import LayerInfo, Shape, scale_macs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "plugin"


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Whatever a test registers or loads is gone afterwards, so tests that enumerate the registry are unaffected."""
    kinds = dict(dict.items(KINDS))
    failed = dict(FAILED_PLUGINS)
    state = {**registry._state, "tried": set(registry._state["tried"])}
    modules = set(sys.modules)
    yield
    dict.clear(KINDS)
    dict.update(KINDS, kinds)
    FAILED_PLUGINS.clear()
    FAILED_PLUGINS.update(failed)
    registry._state.update(state)
    for name in set(sys.modules) - modules:
        if name.startswith(("netspec_ext", "netspec_simam", "netspec_plugin")):
            del sys.modules[name]


# -- a kind registered from user code ----------------------------------------------------------------------


class ChannelScale(netspec.Attention):
    """Learnable per-channel scale (LayerScale-like gate): y = gamma * x."""

    kind = "ext_scale"
    paper = "Touvron et al. Going deeper with Image Transformers. ICCV 2021"

    init: float = 1.0
    """initial value of gamma"""

    def count(self, channels: int, ctx: Context) -> int:
        return channels

    def macs_per_sample(self, x: Shape) -> int | None:
        return scale_macs(x.channels, x)

    def build(self, x: Shape, ctx: Context) -> torch.nn.Module:
        return _Scale(x.channels, self.init)


class _Scale(torch.nn.Module):
    def __init__(self, channels: int, init: float) -> None:
        super().__init__()
        self.gamma = torch.nn.Parameter(torch.full((1, channels, 1, 1), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * x


class Pointwise(Layer):
    """1x1 convolution without norm or activation."""

    kind = "ext_pointwise"

    out: Channels

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if x.flat:
            raise ctx.invalid(None, f"ext_pointwise needs a feature map, got {x}")
        y = Shape(self.out, x.height, x.width)
        return LayerInfo(y, x.channels * self.out, scale_macs(x.channels * self.out, y))

    def build(self, x: Shape, ctx: Context) -> torch.nn.Module:
        return torch.nn.Conv2d(x.channels, self.out, 1, bias=False)


@pytest.fixture
def user_kinds(clean_registry: None) -> Iterator[None]:
    register(ChannelScale)
    register(Pointwise)
    yield


SPEC = """\
input: {channels: 3, size: 16}
layers:
  - conv: {out: 16}
  - ext_scale
  - ext_pointwise: {out: 24}
  - stage: {block: basic, out: 24, depth: 2, attention: {ext_scale: {init: 0.5}}}
  - avgpool
  - linear: {out: 10}
"""


def test_a_registered_kind_works_in_yaml_summary_and_build(user_kinds: None) -> None:
    spec = netspec.loads(SPEC)
    summary = netspec.summary(spec)
    rows = {row.name: row for row in summary.rows}
    assert rows["ext_scale1"].info.params == 16
    assert rows["ext_pointwise1"].info.shape == Shape(24, 16, 16)
    assert rows["ext_pointwise1"].info.macs == 16 * 24 * 16 * 16
    assert "ext_scale1" in str(summary) and "ext_pointwise1" in str(summary)
    model = netspec.build(spec)
    assert sum(p.numel() for p in model.parameters()) == summary.params
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    gammas = [m.gamma for m in model.modules() if isinstance(m, _Scale)]
    assert len(gammas) == 3 and float(gammas[-1].detach().flatten()[0]) == 0.5  # the stage's blocks got init 0.5
    assert netspec.loads(spec.to_yaml()) == spec


def test_a_registered_kind_gets_located_errors(user_kinds: None) -> None:
    text = SPEC.replace("ext_scale\n", "ext_scale: {iint: 2}\n").replace("{out: 24}", "{out: 0}")
    with pytest.raises(netspec.SpecError) as caught:
        netspec.loads(text, name="p.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "p.yaml:4:17: layers[1].ext_scale.iint: unknown field 'iint' (did you mean 'init'?); known: init",
        "p.yaml:5:26: layers[2].ext_pointwise.out: input should be greater than or equal to 1 (got 0)",
    ]


def test_a_registered_kind_is_in_the_schema(user_kinds: None) -> None:
    schema = spec_schema()
    entry = schema["definitions"]["entry"]["oneOf"]
    assert "ext_scale" in entry[0]["enum"] and "ext_pointwise" not in entry[0]["enum"]  # out is required
    assert {"ext_scale", "ext_pointwise"} <= set(entry[1]["properties"])
    attention = schema["definitions"]["entry.attention"]["oneOf"][1]["properties"]
    assert "ext_scale" in attention and "ext_pointwise" not in attention
    params = schema["definitions"]["kind.ext_scale"]
    assert params["properties"]["init"] == {"default": 1.0, "type": "number", "description": "initial value of gamma"}
    assert "Touvron" in params["description"]
    validator = jsonschema.Draft7Validator(schema)
    assert list(validator.iter_errors(yaml.safe_load(SPEC))) == []
    assert list(validator.iter_errors(yaml.safe_load(SPEC.replace("init: 0.5", "init: high"))))
    assert "ext_scale" not in spec_schema(builtin_kinds())["definitions"]["entry"]["oneOf"][0]["enum"]


def test_a_kind_whose_params_json_schema_cannot_express_still_gets_a_schema(clean_registry: None) -> None:
    class Callback(Layer):
        """Calls a Python function (not expressible in JSON Schema)."""

        kind = "ext_callback"
        fn: Callable[[int], int] = abs

    register(Callback)
    with pytest.warns(PluginWarning, match="'ext_callback': no JSON Schema for its params"):
        schema = spec_schema()
    assert schema["definitions"]["kind.ext_callback"]["type"] == "object"
    jsonschema.Draft7Validator.check_schema(schema)


def test_a_registered_kind_is_in_netspec_blocks(user_kinds: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["blocks"]) == 0
    out = capsys.readouterr().out
    assert "ext_scale: Learnable per-channel scale" in out
    assert "  paper: Touvron et al." in out
    assert "  init: default 1.0 - initial value of gamma" in out
    assert "ext_pointwise: 1x1 convolution" in out


def test_a_registered_kind_scales_with_the_network(user_kinds: None) -> None:
    rows = netspec.summary(netspec.loads(SPEC).with_scale(width=0.5)).rows
    assert [row.info.shape.channels for row in rows[:4]] == [8, 8, 16, 16]  # make_divisible(24 * 0.5, 8) = 16


# -- a kind with two inputs (a merge of your own) ----------------------------------------------------------


class GateModule(torch.nn.Module):
    """The additive attention gate of Attention U-Net, in the official layout (LeeJunHyun/Image_Segmentation,
    ``Attention_block``): W_g, W_x (1x1 conv with bias + BN), ReLU of their sum, psi (1x1 conv to 1 + BN +
    sigmoid); the skip ``x`` times psi. Here ``forward(x, g)``: the gated skip first, as ``from: [skip, signal]``."""

    def __init__(self, f_g: int, f_l: int, f_int: int) -> None:
        super().__init__()
        self.W_g = torch.nn.Sequential(torch.nn.Conv2d(f_g, f_int, 1, bias=True), torch.nn.BatchNorm2d(f_int))
        self.W_x = torch.nn.Sequential(torch.nn.Conv2d(f_l, f_int, 1, bias=True), torch.nn.BatchNorm2d(f_int))
        self.psi = torch.nn.Sequential(torch.nn.Conv2d(f_int, 1, 1, bias=True), torch.nn.BatchNorm2d(1),
                                       torch.nn.Sigmoid())
        self.relu = torch.nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return x * self.psi(self.relu(self.W_g(g) + self.W_x(x)))


class AttentionGate(Layer):
    """Attention gate: the skip map (first input) weighted by a gate computed with the gating signal (second)."""

    kind = "ext_attention_gate"
    paper = "Oktay et al. Attention U-Net: Learning Where to Look for the Pancreas. MIDL 2018"
    arity = (2, 2)  # exactly two inputs: `from: [skip, signal]`

    inter: Channels | None = None
    """F_int, the gate's inner channels (default: half the skip's, at least 1)"""

    def channels(self, x: Shape) -> int:
        return self.inter if self.inter is not None else max(x.channels // 2, 1)

    def infer_inputs(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        x, g = inputs
        if x.flat or g.flat or (x.height, x.width) != (g.height, g.width):
            raise ctx.invalid(None, f"needs two feature maps of the same size: {describe_inputs(inputs, ctx)}")
        f_int = self.channels(x)
        per_pixel = f_int * (g.channels + x.channels) + f_int + x.channels  # three 1x1 convs, then x * psi
        return LayerInfo(x, f_int * (g.channels + x.channels) + 7 * f_int + 3, scale_macs(per_pixel, x))

    def build_inputs(self, inputs: list[Shape], ctx: Context) -> torch.nn.Module:
        x, g = inputs
        return GateModule(g.channels, x.channels, self.channels(x))

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> Any:
        from hypothesis import strategies as st

        return st.builds(cls, inter=st.one_of(st.none(), st.integers(1, 8)))

    @classmethod
    def companions(cls, x: Shape) -> Any:
        """The gating signal: any channels, the skip's size."""
        from hypothesis import strategies as st

        return st.integers(1, 8).map(lambda channels: [Shape(channels, x.height, x.width)])


GATED = """\
input: {channels: 3, size: 16}
layers:
  - conv: {out: 32}
    name: skip
  - conv: {out: 64, stride: 2}
  - upconv: {out: 16}
    name: signal
  - ext_attention_gate: {inter: 8}
    from: [skip, signal]
  - concat: {}
    from: [ext_attention_gate1, signal]
"""


@pytest.fixture
def gate_kind(clean_registry: None) -> Iterator[None]:
    register(AttentionGate)
    yield


def test_a_kind_with_two_inputs_works_in_a_graph(gate_kind: None) -> None:
    spec = netspec.loads(GATED)
    rows = {row.name: row for row in netspec.summary(spec).rows}
    gate = rows["ext_attention_gate1"]
    assert gate.inputs == ("skip", "signal") and gate.input_shapes == (Shape(32, 16, 16), Shape(16, 16, 16))
    assert gate.info.shape == Shape(32, 16, 16)
    assert gate.info.params == 8 * (16 + 32) + 7 * 8 + 3  # DESIGN.md 6b: F_int(F_g + F_l) + 7F_int + 3
    assert rows["concat1"].info.shape == Shape(48, 16, 16)
    torch.manual_seed(0)
    model = netspec.build(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == netspec.summary(spec).params
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        skip, signal = model.skip(x), model.signal(model.conv2(model.skip(x)))
        reference = GateModule(16, 32, 8).eval()
        for theirs, ours in zip(reference.state_dict().values(), model.ext_attention_gate1.state_dict().values()):
            theirs.copy_(ours)  # by architecture order
        torch.testing.assert_close(model(x), torch.cat([reference(skip, signal), signal], dim=1))
    assert netspec.loads(spec.to_yaml()) == spec


@pytest.mark.parametrize(("change", "message"), [
    (("from: [skip, signal]", "from: skip"),  # the line and column of the value of `from`
     "9:11: layers[3].from: ext_attention_gate takes 2 inputs, got one: write a list, `from: [a, b]`"),
    (("from: [skip, signal]", "from: [skip, signal, skip]"), "9:11: layers[3].from: ext_attention_gate takes 2 inputs, got 3"),
    (("from: [skip, signal]", "from: [skip, conv2]"),
     "8:25: layers[3].ext_attention_gate: needs two feature maps of the same size: skip (N, 32, 16, 16) and conv2 "
     "(N, 64, 8, 8)"),
    (("from: [skip, signal]", "from: [skip, signl]"),
     "9:18: layers[3].from[1]: unknown name 'signl' (did you mean 'signal'?)"),
])
def test_a_kind_with_two_inputs_gets_located_errors(gate_kind: None, change: tuple[str, str], message: str) -> None:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.loads(GATED.replace(*change), name="g.yaml"))
    assert [str(problem) for problem in caught.value.problems] == [f"g.yaml:{message}"]


def test_random_graphs_draw_a_kind_with_two_inputs(gate_kind: None) -> None:
    """``netspec.strategies`` draws the plugin merge from its ``arity``, ``strategy`` and ``companions``."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from netspec import strategies as nst

    from entry_outputs import assert_static_matches_runtime

    drawn: list[int] = []

    @settings(max_examples=15)
    @given(nst.graph_specs(kinds=["conv", "ext_attention_gate"], min_steps=3), st.data())
    def check(spec: netspec.Spec, data: st.DataObject) -> None:
        drawn.append(sum(layer.kind == "ext_attention_gate" for layer in spec.layers))
        assert_static_matches_runtime(spec, netspec.build(spec))
        inputs, layer = data.draw(nst.node_cases("ext_attention_gate", sized=True))
        assert len(inputs) == 2 and nst.infer_node(layer, inputs)[1] == []

    check()
    assert sum(drawn) > 0


def test_the_fixture_unregisters(clean_registry: None) -> None:
    register(ChannelScale)
    assert "ext_scale" in KINDS
    assert unregister("ext_scale") is ChannelScale
    assert "ext_scale" not in KINDS and unregister("ext_scale") is None


def test_kinds_registered_by_tests_do_not_leak() -> None:
    assert not {"ext_scale", "ext_pointwise", "ext_demo", "my_simam"} & set(KINDS)
    assert all(registry.is_builtin(cls) for cls in KINDS.values())


def test_register_rejects_what_is_not_a_kind(clean_registry: None) -> None:
    with pytest.raises(TypeError, match="Layer subclass"):
        register(int)  # type: ignore[type-var]

    class NoKind(Layer):
        """No kind set."""

    with pytest.raises(TypeError, match="must be an identifier"):
        register(NoKind)

    class Clash(Layer):
        """Takes a built-in name."""

        kind = "se"

    with pytest.raises(ValueError, match="'se' is already registered by netspec.layers.se.SE"):
        register(Clash)
    assert KINDS["se"].__module__ == "netspec.layers.se"


REPLACES_SE = """\
import netspec
from netspec.layers.se import SE

netspec.unregister("se")


@netspec.register
class LoudSE(SE):
    \"\"\"SE under the built-in's name.\"\"\"

    kind = "se"
"""


def test_a_plugin_that_replaces_a_built_in_kind_says_so_on_stderr(clean_registry: None, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Unregistering a built-in kind and registering another class under its name used to be silent: every spec
    using that kind then built the plugin's code. `--plugin` prints one warning line (its output is otherwise
    captured while it loads), and it is a PluginWarning in Python."""
    plugin = tmp_path / "replace_se.py"
    plugin.write_text(REPLACES_SE)
    spec = tmp_path / "net.yaml"
    spec.write_text("input: {channels: 32, size: 4}\nlayers: [se]\n")
    status = cli.main(["--plugin", str(plugin), "check", str(spec)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.err == ("netspec: warning: netspec_plugin_replace_se.LoudSE replaces netspec's built-in kind 'se': "
                            "specs that use 'se' now build it instead of netspec's\n")
    assert KINDS["se"].__name__ == "LoudSE"


def test_replacing_a_built_in_kind_from_python_is_a_plugin_warning(clean_registry: None) -> None:
    class Mine(Layer):
        """Takes a built-in name."""

        kind = "eca"

    original = unregister("eca")
    with pytest.warns(PluginWarning, match="Mine replaces netspec's built-in kind 'eca'"):
        register(Mine)
    with pytest.warns(PluginWarning, match="replaces netspec's built-in kind 'cbam'"):
        KINDS["cbam"] = Mine  # type: ignore[index]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unregister("eca")
        register(original)  # netspec's own kind back: nothing to say
        register(ChannelScale)  # a new kind of its own name: nothing to say


def test_a_bug_in_a_plugin_kind_is_named_by_the_cli(clean_registry: None, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    class Buggy(netspec.Attention):
        """Divides by zero."""

        kind = "ext_buggy"

        def count(self, channels: int, ctx: Context) -> int:
            return channels // 0

        def macs_per_sample(self, x: Shape) -> int | None:
            return 0

    register(Buggy)
    spec = tmp_path / "buggy.yaml"
    spec.write_text("input: {channels: 3}\nlayers: [ext_buggy]\n")
    assert cli.main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err == (f"{spec}:2:10: layers[0].ext_buggy: the plugin kind 'ext_buggy' ({__name__}): its shape rule failed: "
                   "ZeroDivisionError: integer division or modulo by zero\n")


# -- installed plugins: the entry point group netspec.blocks ------------------------------------------------

DEMO = '''\
"""An installed plugin: its import registers `ext_demo`."""
import netspec
from netspec.shapes import LayerInfo


@netspec.register
class Demo(netspec.Layer):
    """Identity kind from an installed package."""

    kind = "ext_demo"
    times: int = 1
    """how many times nothing happens"""

    def infer(self, x, ctx):
        return LayerInfo(x)

    def build(self, x, ctx):
        import torch
        return torch.nn.Identity()


class Undecorated(netspec.Layer):
    """A class named by the entry point itself (no decorator needed)."""

    kind = "ext_undecorated"

    def infer(self, x, ctx):
        return LayerInfo(x)
'''


def install(site: Path, entry_points: dict[str, str], modules: dict[str, str] | None = None,
            name: str = "netspec-ext-demo") -> Path:
    """Write an installed distribution (dist-info with entry_points.txt) into ``site``, a sys.path folder."""
    site.mkdir(parents=True, exist_ok=True)
    dist = site / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[netspec.blocks]\n{lines}")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(source)
    return site


@pytest.fixture
def fresh_plugins(clean_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a new process: plugins not loaded yet, loading armed."""
    monkeypatch.setitem(registry._state, "loaded", False)
    monkeypatch.setitem(registry._state, "armed", True)
    monkeypatch.setitem(registry._state, "tried", set())


def test_an_installed_plugin_loads_only_when_its_kind_is_asked_for(fresh_plugins: None, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    site = install(tmp_path / "site", {"ext_demo": "netspec_ext_demo", "ext_undecorated": "netspec_ext_demo:Undecorated",
                                       "ext_other": "netspec_ext_other"},
                   {"netspec_ext_demo": DEMO, "netspec_ext_other": "raise RuntimeError('never imported')\n"})
    monkeypatch.syspath_prepend(str(site))
    netspec.check(netspec.loads("input: {channels: 3, size: 8}\nlayers: [conv: {out: 8}, {se: {reduction: 4}}]\n"))
    assert "netspec_ext_demo" not in sys.modules  # built-in kinds only: no plugin imported
    spec = netspec.loads("input: {channels: 3, size: 8}\nlayers:\n  - ext_demo: {times: 2}\n  - ext_undecorated\n")
    assert "netspec_ext_demo" in sys.modules and not registry._state["loaded"]
    assert "netspec_ext_other" not in sys.modules and "ext_other" not in FAILED_PLUGINS
    assert [row.kind for row in netspec.summary(spec).rows] == ["ext_demo", "ext_undecorated"]
    with pytest.warns(PluginWarning, match="'ext_other'.*never imported"):  # listing every kind loads them all
        assert "ext_demo" in spec_schema()["definitions"]["entry"]["oneOf"][1]["properties"]
    assert load_plugins() == []  # once only


def test_the_example_plugin_package(fresh_plugins: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    declared = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]["netspec.blocks"]
    assert declared == {"my_simam": "netspec_simam"}
    site = install(tmp_path / "site", declared, name="netspec-simam")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(EXAMPLE))  # as `pip install -e examples/plugin` would
    assert load_plugins() == ["my_simam"]
    spec = netspec.loads("input: {channels: 3, size: 16}\nlayers:\n  - conv: {out: 8}\n  - my_simam\n"
                         "  - stage: {block: basic, out: 16, stride: 2, attention: {my_simam: {e_lambda: 0.001}}}\n")
    rows = netspec.summary(spec).rows
    assert rows[1].info.params == 0 and rows[1].info.macs == 8 * 16 * 16
    model = netspec.build(spec).eval()
    x = torch.randn(2, 8, 16, 16)
    n = 16 * 16 - 1
    d = (x - x.mean(dim=(2, 3), keepdim=True)) ** 2
    expected = x * torch.sigmoid(d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + 1e-4)) + 0.5)
    torch.testing.assert_close(model[1](x), expected)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 16, 8, 8)
    with pytest.raises(netspec.SpecError, match="needs a map larger than 1x1"):
        netspec.check(netspec.loads("input: {channels: 3, size: 1}\nlayers: [my_simam]\n"))


def test_a_broken_plugin_is_a_warning_naming_it(fresh_plugins: None, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    site = install(tmp_path / "site", {"ext_broken": "netspec_ext_broken", "ext_demo": "netspec_ext_demo"},
                   {"netspec_ext_broken": "import not_a_module_anywhere\n", "netspec_ext_demo": DEMO})
    monkeypatch.syspath_prepend(str(site))
    with pytest.warns(PluginWarning) as caught:
        assert "ext_demo" in list(KINDS)  # the good plugin still loads
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("netspec plugin 'ext_broken' (netspec_ext_broken in netspec-ext-demo) was not loaded: ")
    assert "ModuleNotFoundError: No module named 'not_a_module_anywhere'" in message
    with pytest.raises(netspec.SpecError) as error:
        netspec.loads("input: {channels: 3}\nlayers: [ext_broken]\n")
    assert "unknown kind 'ext_broken' (the plugin 'ext_broken' failed to load: ModuleNotFoundError" in str(error.value)


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, loaded: Any) -> None:
        self.name, self.value, self.loaded, self.dist = name, value, loaded, None

    def load(self) -> Any:
        if isinstance(self.loaded, Exception):
            raise self.loaded
        return self.loaded


def test_entry_points_naming_classes_modules_and_junk(fresh_plugins: None, monkeypatch: pytest.MonkeyPatch) -> None:
    class Clash(Layer):
        """Claims a built-in kind."""

        kind = "conv"

    fakes = [
        _FakeEntryPoint("ext_scale", "pkg:ChannelScale", ChannelScale),
        _FakeEntryPoint("pkg", "pkg", sys.modules[__name__]),
        _FakeEntryPoint("ext_junk", "pkg:VALUE", 42),
        _FakeEntryPoint("ext_clash", "pkg:Clash", Clash),
        _FakeEntryPoint("ext_error", "pkg:boom", RuntimeError("boom")),
    ]
    seen: list[str] = []

    def entry_points(*, group: str) -> list[_FakeEntryPoint]:
        seen.append(group)
        return fakes

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    with pytest.warns(PluginWarning) as caught:
        added = load_plugins()
    assert seen == ["netspec.blocks"]
    assert added == ["ext_scale"]
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "netspec plugin 'ext_clash' (pkg:Clash) was not loaded: kind 'conv' is already registered by "
        "netspec.layers.conv.Conv",
        "netspec plugin 'ext_error' (pkg:boom) was not loaded: RuntimeError: boom",
        "netspec plugin 'ext_junk' (pkg:VALUE) was not loaded: names 42, expected a module or a netspec.Layer subclass",
    ]
    assert KINDS["conv"].__module__ == "netspec.layers.conv"


def cli_with(site: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "netspec", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_cli_with_an_installed_and_a_broken_plugin(tmp_path: Path) -> None:
    site = install(tmp_path / "site", {"ext_demo": "netspec_ext_demo", "ext_broken": "netspec_ext_broken"},
                   {"netspec_ext_demo": DEMO, "netspec_ext_broken": "raise RuntimeError('half-installed')\n"})
    result = cli_with(site, "blocks")
    assert result.returncode == 0
    assert "ext_demo: Identity kind from an installed package." in result.stdout
    assert "  times: default 1 - how many times nothing happens" in result.stdout
    assert result.stderr == ("netspec: warning: netspec plugin 'ext_broken' (netspec_ext_broken in netspec-ext-demo) "
                             "was not loaded: RuntimeError: half-installed\n")
    spec = tmp_path / "net.yaml"
    spec.write_text("input: {channels: 3, size: 8}\nlayers:\n  - ext_demo\n  - ext_broken\n")
    result = cli_with(site, "check", str(spec))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [  # one error, at the layer: the plugin was loaded for that kind only
        f"{spec}:4:5: layers[1].ext_broken: unknown kind 'ext_broken' (the plugin 'ext_broken' failed to load: "
        "RuntimeError: half-installed)",
    ]
    result = cli_with(site, "schema")
    assert result.returncode == 0 and '"kind.ext_demo"' in result.stdout
    assert '"kind.ext_demo"' not in cli_with(site, "schema", "--builtin").stdout


def test_import_netspec_does_not_load_plugins_until_the_registry_is_read(tmp_path: Path) -> None:
    site = install(tmp_path / "site", {"ext_demo": "netspec_ext_demo"}, {"netspec_ext_demo": DEMO})
    code = textwrap.dedent("""
        import sys, netspec
        print("netspec_ext_demo" in sys.modules)
        print("ext_demo" in netspec.KINDS)
        print("netspec_ext_demo" in sys.modules)
    """)
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True"]


# -- plugins that fail, plugins on the command line, threads ----------------------------------------------------

PLUGIN_HEAD = """\
import netspec
from netspec.shapes import LayerInfo, Shape

"""

IDENTITY = PLUGIN_HEAD + """\
@netspec.register
class Ident(netspec.Attention):
    \"\"\"Identity attention (a one-file plugin).\"\"\"

    kind = "ext_ident"

    def count(self, channels, ctx):
        return 0

    def macs_per_sample(self, x):
        return 0

    def build(self, x, ctx):
        import torch
        return torch.nn.Identity()
"""

BROKEN_PLUGINS = {
    "raises": ("raise RuntimeError('no GPU here')\n", "RuntimeError: no GPU here"),
    "exits": ("import sys\nsys.exit(3)\n", "it called sys.exit(3) while being imported"),
    "parses argv": ("import argparse\nparser = argparse.ArgumentParser()\nparser.add_argument('data')\n"
                    "parser.parse_args()\n",
                    "it called sys.exit(2) while being imported: "),
    "claims conv": (PLUGIN_HEAD + "@netspec.register\nclass Conv(netspec.Layer):\n    kind = 'conv'\n",
                    "ValueError: kind 'conv' is already registered by netspec.layers.conv.Conv"),
}


@pytest.mark.parametrize("case", list(BROKEN_PLUGINS))
def test_a_plugin_file_that_fails_to_load_is_one_error_naming_it(case: str, clean_registry: None, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source, reason = BROKEN_PLUGINS[case]
    plugin = tmp_path / "my_kinds.py"
    plugin.write_text(source)
    spec = tmp_path / "net.yaml"
    spec.write_text("input: {channels: 3, size: 8}\nlayers: [{conv: {out: 8}}]\n")
    argv = sys.argv
    assert cli.main(["--plugin", str(plugin), "check", str(spec)]) == 1
    assert sys.argv is argv
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"netspec: plugin {str(plugin)!r} could not be loaded: {reason}")
    assert len(err.splitlines()) == 1 and ("parse" not in case or err.endswith("arguments are required: data\n"))
    assert KINDS["conv"].__module__ == "netspec.layers.conv"  # never replaced


@pytest.mark.parametrize("case", list(BROKEN_PLUGINS))
def test_an_installed_plugin_that_fails_is_one_located_error(case: str, fresh_plugins: None, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    source, reason = BROKEN_PLUGINS[case]
    site = install(tmp_path / "site", {"ext_bad": "netspec_ext_bad"}, {"netspec_ext_bad": source})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(netspec.SpecError) as caught:
        netspec.loads("input: {channels: 3}\nlayers: [ext_bad]\n", name="net.yaml")
    assert str(caught.value).startswith("net.yaml:2:10: layers[0].ext_bad: unknown kind 'ext_bad' (the plugin "
                                        f"'ext_bad' failed to load: {reason}")
    assert len(str(caught.value).splitlines()) == 1
    assert KINDS["conv"].__module__ == "netspec.layers.conv"


WRONG_RULES = {
    "a shape rule returning a tuple": (
        "    def infer(self, x, ctx):\n        return (x.channels, x.height, x.width)\n"
        "    def build(self, x, ctx):\n        import torch\n        return torch.nn.Identity()\n",
        "its shape rule returned (3, 8, 8), not a netspec LayerInfo"),
    "a negative parameter count": (
        "    def infer(self, x, ctx):\n        return LayerInfo(x, -1)\n"
        "    def build(self, x, ctx):\n        import torch\n        return torch.nn.Identity()\n",
        "its shape rule returned -1 parameters (must be an int >= 0)"),
    "a module that disagrees with the rule": (
        "    def infer(self, x, ctx):\n        return LayerInfo(x)\n"
        "    def build(self, x, ctx):\n        import torch\n        return torch.nn.Conv2d(x.channels, 5, 1)\n",
        "its module outputs (N, 5, 8, 8) on an input (N, 3, 8, 8), but its shape rule says (N, 3, 8, 8)"),
    "a module that raises": (
        "    def infer(self, x, ctx):\n        return LayerInfo(x)\n"
        "    def build(self, x, ctx):\n        import torch\n        return torch.nn.Linear(1, 1)\n",
        "its module failed on an input (N, 3, 8, 8): RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
}


@pytest.mark.parametrize("case", list(WRONG_RULES))
@pytest.mark.parametrize("inside_a_stage", [False, True])
def test_a_plugin_kind_that_breaks_its_contract_is_named_at_its_line(case: str, inside_a_stage: bool,
                                                                    clean_registry: None, tmp_path: Path) -> None:
    body, reason = WRONG_RULES[case]
    base = "netspec.Attention" if inside_a_stage else "netspec.Layer"
    plugin = tmp_path / "wrong.py"
    plugin.write_text(PLUGIN_HEAD + f"@netspec.register\nclass Wrong({base}):\n    kind = 'ext_wrong'\n" + body)
    if inside_a_stage:
        text = "input: {channels: 3, size: 8}\nlayers:\n  - stage: {block: basic, out: 3, attention: ext_wrong}\n"
        where, path = f"3:{text.splitlines()[2].index('ext_wrong') + 1}", "layers[0].stage.attention.ext_wrong"
    else:
        text = "input: {channels: 3, size: 8}\nlayers:\n  - conv: {out: 3}\n  - ext_wrong\n"
        where, path = "4:5", "layers[1].ext_wrong"
    registry.load_plugin(str(plugin))
    spec = netspec.loads(text, name="net.yaml")
    with pytest.raises(netspec.SpecError) as caught:
        (netspec.build if "module" in case else netspec.check)(spec)
    found = str(caught.value)
    assert found.startswith(f"net.yaml:{where}: {path}: the plugin kind 'ext_wrong' (netspec_plugin_wrong): {reason}")
    assert len(found.splitlines()) == 1


def test_plugins_from_the_command_line_file_or_module_repeatable(clean_registry: None, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "my_kinds.py").write_text(IDENTITY)
    package = tmp_path / "pkgs"
    package.mkdir()
    (package / "netspec_ext_more.py").write_text(DEMO)
    monkeypatch.syspath_prepend(str(package))
    spec = tmp_path / "net.yaml"
    spec.write_text("input: {channels: 3, size: 8}\nlayers: [ext_ident, ext_demo]\n")
    assert cli.main(["--plugin", str(tmp_path / "my_kinds.py"), "--plugin", "netspec_ext_more", "check", str(spec)]) == 0
    assert capsys.readouterr().out == f"{spec}: ok (2 layers, output (N, 3, 8, 8), 0 params)\n"
    assert cli.main(["--plugin", "netspec_ext_no_such_module", "check", str(spec)]) == 1
    assert capsys.readouterr().err == ("netspec: plugin 'netspec_ext_no_such_module' could not be loaded: "
                                       "ModuleNotFoundError: No module named 'netspec_ext_no_such_module'\n")
    assert cli.main(["--plugin", str(tmp_path / "missing.py"), "check", str(spec)]) == 1
    assert "could not be loaded: FileNotFoundError: no such file" in capsys.readouterr().err


def test_four_threads_loading_a_plugin_kind_at_once_all_get_it(fresh_plugins: None, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    slow = "import time\ntime.sleep(0.3)\n" + DEMO  # a plugin that takes a while to import
    site = install(tmp_path / "site", {"ext_demo": "netspec_ext_demo"}, {"netspec_ext_demo": slow})
    monkeypatch.syspath_prepend(str(site))
    barrier = threading.Barrier(4)
    results: list[object] = []

    def load() -> None:
        barrier.wait()
        try:
            results.append(netspec.check(netspec.loads("input: {channels: 3, size: 8}\nlayers: [ext_demo]\n")).output)
        except Exception as error:  # collected, so that the assertion below shows it
            results.append(error)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [Shape(3, 8, 8)] * 4


def test_with_the_example_plugin_installed_check_imports_no_torch(tmp_path: Path) -> None:
    """The README's plugin, installed (its entry point), must not make `netspec check` import torch."""
    declared = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]["netspec.blocks"]
    site = install(tmp_path / "site", declared, name="netspec-simam")
    simam = tmp_path / "simam.yaml"
    simam.write_text("input: {channels: 3, size: 16}\nlayers: [{conv: {out: 8}}, my_simam]\n")
    code = textwrap.dedent(f"""
        import sys
        from netspec.cli import main
        status = main(["check", "specs/resnet50.yaml"])
        print(status, "torch" in sys.modules, "netspec_simam" in sys.modules)
        status = main(["check", {str(simam)!r}])
        print(status, "torch" in sys.modules, "netspec_simam" in sys.modules)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLE)])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("specs/resnet50.yaml: ok") and lines[1] == "0 False False"
    assert lines[2].startswith(f"{simam}: ok") and lines[3] == "0 False True"  # the plugin imports torch lazily


# -- a block registered from user code ---------------------------------------------------------------------


@pytest.fixture
def clean_blocks(clean_registry: None) -> Iterator[None]:
    from netspec.blocks import BLOCKS

    blocks = dict(BLOCKS)
    yield
    BLOCKS.clear()
    BLOCKS.update(blocks)


def _pointwise_block() -> type:
    """A plugin block in one class: 1x1 conv + norm + act, then the stage's attention, plus the input when it fits."""
    from netspec.blocks import Block, register_block
    from netspec.layers.conv import conv_info

    class PointwiseResidual(torch.nn.Module):
        def __init__(self, body: torch.nn.Module, attention: torch.nn.Module | None, residual: bool) -> None:
            super().__init__()
            self.body, self.attention, self.residual = body, attention or torch.nn.Identity(), residual

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.attention(self.body(x))
            return y + x if self.residual else y

    @register_block
    class Pointwise(Block):
        """1x1 conv + norm + act at the block's stride, the attention, and the input added when the shape is kept."""

        name = "ext_pointwise_block"
        options = frozenset({"attention"})

        def infer(self, stage: Any, x: Shape, ctx: Context, site: Any) -> LayerInfo:
            info = conv_info(x, ctx, out=stage.out, kernel=1, stride=site.stride, norm=site.norm, bias=site.bias)
            if stage.attention is not None:
                info = info.then(stage.attention.infer(info.shape, ctx.at("attention", stage.attention.kind)))
            return info

        def build(self, stage: Any, x: Shape, ctx: Context, site: Any) -> torch.nn.Module:
            from netspec.modules.conv import ConvNormAct

            body = ConvNormAct(x.channels, stage.out, kernel=1, stride=site.stride, bias=site.bias, norm=site.norm,
                               act=site.act)
            attention = stage.attention.build(Shape(stage.out), ctx) if stage.attention is not None else None
            return PointwiseResidual(body, attention, site.stride == 1 and x.channels == stage.out)

    return Pointwise


BLOCK_SPEC = """\
input: {channels: 3, size: 8}
layers:
  - conv: {out: 8}
  - stage: {block: ext_pointwise_block, out: 16, depth: 3, stride: 2, attention: se}
"""


def test_a_registered_block_works_in_yaml_summary_build_and_schema(clean_blocks: None) -> None:
    _pointwise_block()
    spec = netspec.loads(BLOCK_SPEC)
    summary = netspec.summary(spec)
    model = netspec.build(spec, seed=0)
    assert summary.params == sum(p.numel() for p in model.parameters())
    # block 1: 8 -> 16 at stride 2 (conv 128 + BN 32 + SE 16*1*2 + 1 + 16); blocks 2 and 3: 16 -> 16 (256 + 32 + 49)
    assert summary.params - 8 * 3 * 9 - 16 == 128 + 32 + 49 + 2 * (256 + 32 + 49)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 16, 4, 4)
    stage = model[1]
    assert [type(b).__name__ for b in stage] == ["PointwiseResidual"] * 3
    assert [b.residual for b in stage] == [False, True, True]
    schema = spec_schema()
    assert "ext_pointwise_block" in schema["definitions"]["kind.stage"]["properties"]["block"]["enum"]
    assert "ext_pointwise_block" not in spec_schema(builtin_kinds())["definitions"]["kind.stage"]["properties"]["block"]["enum"]
    jsonschema.validate(yaml.safe_load(BLOCK_SPEC), schema)


def test_a_registered_blocks_options_and_mistakes_are_located_errors(clean_blocks: None) -> None:
    _pointwise_block()
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(netspec.loads(BLOCK_SPEC.replace("attention: se", "groups: 2")))
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.startswith("4:79: layers[1].stage.groups: only for block: plain, basic or bottleneck")
    assert problem.endswith(" (block: ext_pointwise_block does not use it)")
    with pytest.raises(netspec.SpecError) as caught:
        netspec.loads(BLOCK_SPEC.replace("block: ext_pointwise_block", "block: ext_pointwise_blok"))
    message = str(caught.value.problems[0])
    assert "layers[1].stage.block" in message and "'ext_pointwise_block'" in message
    assert "(did you mean 'ext_pointwise_block'?)" in message


def _separable_block() -> type:
    """A plugin block with a param of its own: MobileNetV1's depthwise-separable conv, the depthwise conv giving
    `depth_multiplier` channels per input channel (Keras' MobileNet ``depth_multiplier``)."""
    from hypothesis import strategies as st
    from pydantic import Field

    from netspec.blocks import Block, BlockParams, register_block
    from netspec.layers.conv import conv_info
    from netspec.modules.conv import ConvNormAct

    class SeparableParams(BlockParams):
        depth_multiplier: int = Field(1, ge=1, le=8)
        """channels the depthwise conv gives per input channel"""

    @register_block
    class Separable(Block):
        """Depthwise 3x3 conv (x `depth_multiplier` channels, the stride), then 1x1 conv to `out`."""

        name = "ext_separable_block"
        Params = SeparableParams

        def infer(self, stage: Any, x: Shape, ctx: Context, site: Any) -> LayerInfo:
            convs = dict(bias=site.bias, norm=site.norm)
            depthwise = conv_info(x, ctx, out=x.channels * stage.depth_multiplier, kernel=3, stride=site.stride,
                                  padding=1, groups=x.channels, **convs)
            return depthwise.then(conv_info(depthwise.shape, ctx, out=stage.out, kernel=1, **convs))

        def build(self, stage: Any, x: Shape, ctx: Context, site: Any) -> torch.nn.Module:
            convs = dict(bias=site.bias, norm=site.norm, act=site.act)
            mid = x.channels * stage.depth_multiplier
            return torch.nn.Sequential(
                ConvNormAct(x.channels, mid, kernel=3, stride=site.stride, padding=1, groups=x.channels, **convs),
                ConvNormAct(mid, stage.out, kernel=1, **convs))

        def draw(self, draw: Any, stage: type[Any], x: Shape) -> Any:
            return stage(block=self.name, out=draw(st.integers(1, 8)), depth=draw(st.integers(1, 2)),
                         stride=draw(st.sampled_from([1, 2])), depth_multiplier=draw(st.integers(1, 3)))

    return Separable


SEPARABLE_SPEC = """\
input: {channels: 3, size: 8}
layers:
  - conv: {out: 8}
  - stage: {block: ext_separable_block, out: 16, depth: 2, stride: 2, depth_multiplier: 2}
"""


def _stage_problems(text: str) -> list[str]:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(netspec.loads(text, name="sep.yaml"))
    return [str(p) for p in caught.value.problems]


def test_a_plugin_blocks_own_param_validates_counts_and_builds(clean_blocks: None) -> None:
    _separable_block()
    spec = netspec.loads(SEPARABLE_SPEC)
    stage = spec.layers[1]
    assert stage.depth_multiplier == 2 and stage.block_params.depth_multiplier == 2
    model = netspec.build(spec, seed=0)
    summary = netspec.summary(spec)
    assert summary.params == sum(p.numel() for p in model.parameters())
    # block 1: depthwise 8 -> 16 (16 * 9 + BN 32), 1x1 16 -> 16 (256 + 32); block 2: 16 -> 32 (288 + 64), 32 -> 16
    assert summary.params - (8 * 3 * 9 + 16) == (144 + 32 + 256 + 32) + (288 + 64 + 512 + 32)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 16, 4, 4)
    at_default = netspec.loads(SEPARABLE_SPEC.replace(", depth_multiplier: 2", ""))
    assert at_default.layers[1].depth_multiplier == 1
    assert netspec.summary(at_default).params < summary.params


def test_a_plugin_blocks_own_param_round_trips_through_dump_and_overrides(clean_blocks: None) -> None:
    _separable_block()
    spec = netspec.loads(SEPARABLE_SPEC)
    text = spec.to_yaml()
    assert "depth_multiplier: 2" in text
    assert netspec.loads(text) == spec and netspec.loads(text).layers[1] == spec.layers[1]
    assert netspec.loads(text).layers[1] != netspec.loads(SEPARABLE_SPEC.replace("multiplier: 2", "multiplier: 3")).layers[1]
    at_default = netspec.loads(SEPARABLE_SPEC.replace(", depth_multiplier: 2", ""))
    assert "depth_multiplier" not in at_default.to_yaml()  # a default is left out, as every param's
    changed = netspec.build(spec, overrides={"layers.1.depth_multiplier": 3})
    assert changed[1].block1[0].conv.out_channels == 24
    stage = spec.layers[1]
    assert stage.model_dump(exclude_defaults=True)["depth_multiplier"] == 2
    assert type(stage).model_validate(stage.model_dump()) == stage  # pydantic's own dump validates back too
    copy = stage.model_copy()
    copy.depth_multiplier = 3  # assigned in the block's model, validated there
    assert (copy.depth_multiplier, stage.depth_multiplier) == (3, 2)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        copy.depth_multiplier = 0


def test_a_plugin_blocks_own_param_mistakes_are_located_errors(clean_blocks: None) -> None:
    _separable_block()
    [wrong] = _stage_problems(SEPARABLE_SPEC.replace("multiplier: 2", "multiplier: 0"))
    assert wrong == "sep.yaml:4:89: layers[1].stage.depth_multiplier: input should be greater than or equal to 1 (got 0)"
    [strict] = _stage_problems(SEPARABLE_SPEC.replace("multiplier: 2", "multiplier: '2'"))
    assert strict.startswith("sep.yaml:4:89: layers[1].stage.depth_multiplier: input should be a valid integer")
    [misspelt] = _stage_problems(SEPARABLE_SPEC.replace("depth_multiplier", "depth_multiplyer"))
    assert misspelt.startswith("sep.yaml:4:71: layers[1].stage.depth_multiplyer: unknown field 'depth_multiplyer' "
                               "(did you mean 'depth_multiplier'?); known: out, block, depth,")
    assert misspelt.endswith(", padding, depth_multiplier")
    [elsewhere] = _stage_problems(SEPARABLE_SPEC.replace("ext_separable_block", "basic"))
    assert elsewhere.startswith("sep.yaml:4:75: layers[1].stage.depth_multiplier: only for block: ext_separable_block "
                                "(block: basic does not use it)")
    [own_not_stage] = _stage_problems(SEPARABLE_SPEC.replace("block: ext_separable_block", "block: regnet"))
    assert "layers[1].stage.depth_multiplier: only for block: ext_separable_block (block: regnet" in own_not_stage
    both = _stage_problems(SEPARABLE_SPEC.replace("depth: 2", "depth: 0").replace("multiplier: 2", "multiplier: 9"))
    assert [p.split(": ")[1] for p in both] == ["layers[1].stage.depth", "layers[1].stage.depth_multiplier"]
    with pytest.raises(netspec.SpecError, match="layers.1.depth_multiplyer: stage has no param 'depth_multiplyer'"):
        netspec.build(netspec.loads(SEPARABLE_SPEC), overrides={"layers.1.depth_multiplyer": 3})


def test_a_plugin_blocks_own_param_left_by_a_python_edit_is_reported_by_check(clean_blocks: None) -> None:
    _separable_block()
    spec = netspec.loads(SEPARABLE_SPEC, name="sep.yaml")
    stage = spec.layers[1]
    basic = stage.model_copy(update={"block": "basic"})
    assigned = netspec.loads(SEPARABLE_SPEC).layers[1]
    assigned.block = "basic"
    for edited in (basic, assigned):
        assert (edited.block, edited.depth_multiplier, edited.block_params) == ("basic", 2, None)
        edited_spec = spec.model_copy(update={"layers": [spec.layers[0], edited]})
        assert _problem_texts(edited_spec) == [
            "layers[1].stage.depth_multiplier: only for block: ext_separable_block (block: basic does not use it)"]
        assert "depth_multiplier: 2" in edited_spec.to_yaml()
    back = basic.model_copy(update={"block": "ext_separable_block", "depth_multiplier": 3})
    assert back.block_params.depth_multiplier == 3 and back.model_dump()["depth_multiplier"] == 3
    built = netspec.build(spec.model_copy(update={"layers": [spec.layers[0], back]}))
    assert built[1].block1[0].conv.out_channels == 24
    with pytest.raises(ValueError, match="greater than or equal to 1"):  # checked by the block's model, nothing changed
        basic.model_copy(update={"block": "ext_separable_block", "depth_multiplier": 0})
    basic.depth_multiplier = 0  # kept unchecked while the block does not read it, checked once it does
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        basic.block = "ext_separable_block"
    assert (basic.block, basic.depth_multiplier, basic.block_params) == ("basic", 0, None)  # left as it was
    plain = netspec.loads(SEPARABLE_SPEC.replace("block: ext_separable_block", "block: basic")
                          .replace(", depth_multiplier: 2", "")).layers[1]
    plain.depth_multiplier = 2  # assigned on a block that does not use it: kept, and reported by check
    assert plain.model_dump(exclude_unset=True)["depth_multiplier"] == 2
    plain.depth_multiplier = 1  # back at the plugin block's default: nothing to report
    assert "depth_multiplier" not in plain.model_dump() and plain.to_entry() == {"stage": {"out": 16, "block": "basic",
                                                                                      "depth": 2, "stride": 2}}


def _problem_texts(spec: netspec.Spec) -> list[str]:
    """``spec``'s problems without their place in the source (a copy keeps its entries' places)."""
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(spec)
    return [str(problem).split(": ", 1)[1] for problem in caught.value.problems]

def test_a_plugin_blocks_own_param_is_in_netspec_blocks_and_the_schema(clean_blocks: None,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _separable_block()
    assert cli.main(["blocks"]) == 0
    listing = capsys.readouterr().out.split("stage blocks (`stage: {block: NAME}`)")[1].splitlines()
    line = next(index for index, text in enumerate(listing) if text.startswith("  ext_separable_block: "))
    assert listing[line].endswith("; params: depth_multiplier")
    assert listing[line + 1] == ("    depth_multiplier: default 1 - channels the depthwise conv gives per input "
                                 "channel (ext_separable_block only)")
    schema = spec_schema()
    prop = schema["definitions"]["kind.stage"]["properties"]["depth_multiplier"]
    assert prop["type"] == "integer" and prop["minimum"] == 1 and prop["maximum"] == 8 and prop["default"] == 1
    assert prop["description"] == "ext_separable_block: channels the depthwise conv gives per input channel"
    assert "depth_multiplier" not in spec_schema(builtin_kinds())["definitions"]["kind.stage"]["properties"]
    jsonschema.validate(yaml.safe_load(SEPARABLE_SPEC), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(SEPARABLE_SPEC.replace("multiplier: 2", "multiplier: 0")), schema)


def test_a_plugin_blocks_draw_sets_its_own_param(clean_blocks: None) -> None:
    from hypothesis import given, settings, strategies as st

    from netspec.layers.stage import Stage

    block = _separable_block()()
    seen: set[int] = set()

    @settings(max_examples=25, deadline=None, database=None)
    @given(st.composite(lambda draw: block.draw(draw, Stage, Shape(4, 8, 8)))())
    def round_trips(stage: Any) -> None:
        seen.add(stage.depth_multiplier)
        text = yaml.safe_dump({"input": {"channels": 4, "size": 8}, "layers": [stage.to_entry()]})
        spec = netspec.loads(text)
        assert spec.layers[0] == stage
        assert netspec.summary(spec).params == sum(p.numel() for p in netspec.build(spec).parameters())

    round_trips()
    assert seen == {1, 2, 3}


def test_a_block_cannot_redeclare_a_stage_param(clean_blocks: None) -> None:
    from netspec.blocks import Block, BlockParams, register_block

    class KernelParams(BlockParams):
        kernel: int = 3

    class Clash(Block):
        name = "ext_clash_block"
        Params = KernelParams

    with pytest.raises(TypeError, match="redeclares stage params kernel: list them in `options`"):
        register_block(Clash)
    Clash.Params = dict  # type: ignore[assignment]
    with pytest.raises(TypeError, match="Params must be a pydantic model"):
        register_block(Clash)


def test_a_plugin_blocks_own_bug_is_a_located_problem_naming_it(clean_blocks: None) -> None:
    block = _pointwise_block()

    def broken(self: Any, stage: Any, x: Shape, ctx: Context, site: Any) -> LayerInfo:
        raise ZeroDivisionError("division by zero")

    block.infer = broken  # type: ignore[method-assign]
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(netspec.loads(BLOCK_SPEC))
    [problem] = caught.value.problems
    assert str(problem).endswith("layers[1].stage: the plugin block 'ext_pointwise_block' "
                                 f"({__name__}): its shape rule failed: ZeroDivisionError: division by zero")


def test_a_block_name_is_registered_once(clean_blocks: None) -> None:
    from netspec.blocks import Block, register_block

    class Again(Block):
        name = "bottleneck"

    with pytest.raises(ValueError, match="block 'bottleneck' is already registered by netspec.blocks.bottleneck"):
        register_block(Again)
    with pytest.raises(TypeError, match="expects a netspec Block subclass"):
        register_block(int)  # type: ignore[type-var]


def test_a_plugin_file_registers_a_block_and_one_that_fails_leaves_none(clean_blocks: None, tmp_path: Path) -> None:
    from netspec.blocks import BLOCKS
    from netspec.registry import PluginError, load_plugin

    body = textwrap.dedent("""
        from netspec.blocks import register_block
        from netspec.blocks.basic import Basic

        @register_block
        class Twin(Basic):
            '''The basic block under another name.'''
            name = "ext_twin_block"
    """)
    good = tmp_path / "twin_block.py"
    good.write_text(body)
    load_plugin(str(good))
    spec = netspec.loads("input: {channels: 3, size: 8}\nlayers:\n  - stage: {block: ext_twin_block, out: 8}\n")
    basic = netspec.loads("input: {channels: 3, size: 8}\nlayers:\n  - stage: {block: basic, out: 8}\n")
    assert netspec.summary(spec).params == netspec.summary(basic).params
    del BLOCKS["ext_twin_block"]
    bad = tmp_path / "broken_block.py"
    bad.write_text(body + "\nraise RuntimeError('half way')\n")
    with pytest.raises(PluginError, match="half way"):
        load_plugin(str(bad))
    assert "ext_twin_block" not in BLOCKS


def test_a_plugin_blocks_own_channels_param_scales_with_the_spec(clean_blocks: None) -> None:
    from netspec.blocks import BlockParams, register_block
    from netspec.blocks.basic import Basic

    class TwinParams(BlockParams):
        side: Channels = 64
        """channels of a side branch (here only read back): scaled with `scale.width` as `out` is"""

    @register_block
    class Twin(Basic):
        """The basic block, with a channel count of its own."""

        name = "ext_scaled_block"
        Params = TwinParams

    spec = netspec.loads("input: {channels: 3, size: 8}\nscale: {width: 0.5}\n"
                         "layers:\n  - stage: {block: ext_scaled_block, out: 32, side: 64}\n")
    [stage] = spec.scaled_layers()
    assert (stage.out, stage.side) == (16, 32) and spec.layers[0].side == 64  # the spec itself is unchanged
    assert netspec.loads(spec.to_yaml()) == spec
