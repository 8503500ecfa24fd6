"""Graph specs (DESIGN 2b, issue 11): names, `from:`, merges, upsampling, several outputs, located errors."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

import netspec
from netspec import drawing
from netspec.cli import main
from netspec.compiler import RESERVED_NAMES

DATA = Path(__file__).resolve().parent / "data"

HEAD = """
name: danet_head_sketch
input: {channels: 3, size: 32}
layers:
  - conv: {out: 8, stride: 2}
  - stage: {out: 16, dilation: 2}
    name: c5
  - conv: {out: 8}
  - pam
  - conv: {out: 8}
    name: sa
  - conv: {out: 8}
    from: c5
  - cam
  - conv: {out: 8}
    name: sc
  - add: {}
    from: [sa, sc]
  - conv: {out: 5, kernel: 1, norm: none, act: none}
    name: seg
  - upsample: {to: input, mode: bilinear, align_corners: true}
    name: out
outputs: [out, sa]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(netspec.SpecError) as error:
        netspec.check(netspec.loads(text, name="g.yaml"))
    return [str(problem) for problem in error.value.problems]


def test_a_graph_builds_a_graph_module_with_entry_children_and_several_outputs() -> None:
    spec = netspec.loads(HEAD)
    model = netspec.build(spec)
    assert isinstance(model, torch.fx.GraphModule)
    assert [name for name, _ in model.named_children()] == [
        "conv1", "c5", "conv2", "pam1", "sa", "conv4", "cam1", "sc", "add1", "seg", "out"]
    assert "add1 = self.add1(sa, sc)" in model.code and "return (out, sa)" in model.code
    out, sa = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5, 32, 32) and sa.shape == (2, 8, 16, 16)
    summary = netspec.summary(spec)
    assert [(name, shape.dims()) for name, shape in summary.output_shapes] == [("out", (5, 32, 32)), ("sa", (8, 16, 16))]
    assert summary.params == sum(p.numel() for p in model.parameters())


def test_the_graph_computes_what_its_edges_say() -> None:
    """Each child run by hand on the tensors its `from:` names gives the GraphModule's outputs."""
    torch.manual_seed(0)
    spec = netspec.loads(HEAD)
    model = netspec.build(spec).eval()
    for module in model.modules():  # non-zero attention gammas, so every branch matters
        if hasattr(module, "gamma"):
            torch.nn.init.constant_(module.gamma, 0.5)
    x = torch.randn(1, 3, 32, 32)
    values = {"input": x}
    with torch.no_grad():
        for row in netspec.summary(spec).rows:
            values[row.name] = getattr(model, row.name)(*(values[source] for source in row.inputs))
        out, sa = model(x)
    torch.testing.assert_close(out, values["out"])
    torch.testing.assert_close(sa, values["sa"])
    assert not torch.equal(values["sa"], values["sc"])


def test_a_plain_sequence_still_builds_the_same_sequential() -> None:
    model = netspec.build("specs/resnet18.yaml")
    assert type(model) is torch.nn.Sequential
    assert [name for name, _ in model.named_children()][:3] == ["conv1", "maxpool1", "stage1"]


def test_every_graph_error_is_reported_at_once_at_its_line() -> None:
    found = problems((DATA / "graph_errors.yaml").read_text())
    assert found == [
        "g.yaml:8:11: layers[2].from: unknown name 'stemm' (did you mean 'stem'?)",
        "g.yaml:10:11: layers[3].from: 'later' is defined later (layers[13]): an entry reads earlier ones only, "
        "so move it below",
        "g.yaml:13:11: layers[4].from: 'self_ref' refers to this entry itself: an entry reads earlier ones only",
        "g.yaml:15:11: layers[5].name: duplicate name 'stem': layers[0] is already called so",
        "g.yaml:17:11: layers[6].name: the name 'input' is reserved (the network's input): choose another",
        "g.yaml:18:13: layers[7].concat: concat needs equal spatial sizes: stem (N, 8, 32, 32) and down "
        "(N, 8, 16, 16) (resize one with `upsample: {to: ...}` or a strided layer)",
        "g.yaml:21:11: layers[8].from: add takes at least 2 inputs, got 1",
        "g.yaml:23:11: layers[9].from: conv takes one input, got a list of 2",
        "g.yaml:24:10: layers[10].mul: mul needs equal shapes (or a size-1 gate such as (N, C, 1, 1)): "
        "stem (N, 8, 32, 32) and down (N, 8, 16, 16)",
        "g.yaml:32:13: layers[14].concat: concat takes 2 or more inputs: write `from: [a, b]` beside it",
        "g.yaml:33:17: outputs[1]: unknown name 'nope'",
    ]


@pytest.mark.parametrize("entries, expected", [
    ("- conv: {out: 8}\n  name: c1\n- avgpool:\n  name: flat\n- upsample: {to: c1}",
     "layers[2].upsample: upsample needs a feature map (N, C, H, W), got (N, 8): it cannot resize a flat tensor"),
    ("- conv: {out: 8}\n  name: c1\n- avgpool:\n  name: flat\n- conv: {out: 8}\n  from: c1\n- upsample: {to: flat}",
     "layers[3].upsample.to: 'flat' is flat (N, 8): upsample takes its H x W from a feature map"),
    ("- conv: {out: 8}\n  name: Stem", "layers[0].name: a name is lower case letters, digits and _"),
    ("- conv: {out: 8}\n  name: forward", "layers[0].name: the name 'forward' is reserved (an attribute of torch"),
    ("- conv: {out: 8, name: c1}", "layers[0].conv.name: `name` goes beside the kind, not in its params"),
    ("- stage: {out: 8, attention: {se: {}, name: x}}", "only top-level entries can have `name` or `from`"),
    ("- conv: {out: 8}\n- conv: {out: 8}\n  name: conv1", "layers[1].name: duplicate name 'conv1': layers[0] is "
                                                          "already called so (its automatic name)"),
    ("- conv: {out: 8}\n- upsample: {to: conv9}", "layers[1].upsample.to: unknown name 'conv9' (did you mean 'conv1'?)"),
    ("- conv: {out: 8}\n- mul: {}\n  from: conv1", "layers[1].from: mul takes 2 or more inputs, got one"),
    ("- conv: {out: 8}\n  from: 7", "layers[0].from: `from` is an earlier entry's name (or `input`), or a list of names "
                                   "for a merge (got 7)"),
    ("- conv: {out: 8}\n- add: {}\n  from: [conv1, Bad]", "layers[1].from[1]: a name is lower case letters"),
])
def test_graph_mistakes_are_located(entries: str, expected: str) -> None:
    text = "input: {channels: 3, size: 16}\nlayers:\n" + "\n".join("  " + line for line in entries.splitlines()) + "\n"
    found = problems(text)
    assert any(expected in line for line in found), found
    assert all(line.startswith("g.yaml:") for line in found)
    assert not any("constrained-str" in line or "tuple[" in line for line in found), found  # no pydantic internals


def test_gates_broadcast_in_mul_and_add() -> None:
    text = """
input: {channels: 3, size: 16}
layers:
  - conv: {out: 8}
    name: x
  - avgpool: {size: 1}
  - conv: {out: 8, kernel: 1, norm: none, act: sigmoid}
    name: gate
  - mul: {}
    from: [x, gate]
"""
    spec = netspec.loads(text)
    rows = netspec.summary(spec).rows
    assert rows[-1].info.shape.dims() == (8, 16, 16) and rows[-1].info.macs == 8 * 16 * 16
    assert netspec.build(spec)(torch.randn(2, 3, 16, 16)).shape == (2, 8, 16, 16)


def test_unknown_sizes_are_checked_at_run_time_not_rejected() -> None:
    spec = netspec.loads(HEAD.replace("size: 32", "size: null"))
    out, _ = netspec.build(spec)(torch.randn(1, 3, 24, 40))
    assert out.shape == (1, 5, 24, 40)


def test_an_unused_entry_is_a_warning_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "u.yaml"
    path.write_text("input: {channels: 3}\nlayers:\n  - conv: {out: 8}\n    name: stem\n  - conv: {out: 8}\n"
                    "  - conv: {out: 8}\n    from: stem\n")
    with pytest.warns(netspec.SpecWarning, match=r"u\.yaml:5:5: layers\[1\]\.conv: the output of 'conv2' is not used"):
        netspec.build(netspec.load(path))
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:5:5: warning: layers[1].conv: the output of 'conv2' is not used by any entry nor listed in "
        "`outputs`: it is computed for nothing"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        netspec.build(netspec.loads(HEAD))  # every entry is read by another or is an output: no warning


def test_summary_and_json_show_each_entrys_inputs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    table = str(netspec.summary(netspec.loads(HEAD)))
    assert "from" in table.splitlines()[1]
    assert any(line.split()[:4] == ["add1", "add", "sa,", "sc"] for line in table.splitlines())
    assert "outputs:      out (N, 5, 32, 32), sa (N, 8, 16, 16)" in table
    path = tmp_path / "head.yaml"
    path.write_text(HEAD)
    assert main(["build", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert layers["add1"]["inputs"] == ["sa", "sc"] and layers["conv4"]["inputs"] == ["c5"]
    assert layers["out"]["inputs"] == ["seg", "input"]
    assert data["outputs"] == [{"name": "out", "shape": [5, 32, 32]}, {"name": "sa", "shape": [8, 16, 16]}]


def test_the_drawing_has_the_real_edges() -> None:
    summary = netspec.summary(netspec.loads(HEAD))
    dot = drawing.to_dot(summary)
    ids = {row.name: f"n{index}" for index, row in enumerate(summary.rows, start=1)}
    for source, target in [("c5", "conv4"), ("sa", "add1"), ("sc", "add1"), ("seg", "out")]:
        assert f"  {ids[source]} -> {ids[target]};" in dot
    assert "  n0 -> " + ids["out"] + ";" in dot  # upsample `to: input` reads the input's size
    assert f"  {ids['sa']} -> {ids['conv4']};" not in dot
    assert drawing.to_mermaid(summary).count("-->") == len(drawing.edges(summary)) == 13  # 11 entries, two read two


def test_yaml_round_trip_keeps_the_wiring() -> None:
    spec = netspec.loads(HEAD)
    text = spec.to_yaml()
    assert "  name: c5\n" in text and "  from: [sa, sc]\n" in text and "outputs: [out, sa]" in text
    assert netspec.loads(text) == spec


def test_python_api_writes_the_same_graph() -> None:
    from netspec.layers import Add, Conv, Upsample

    spec = netspec.Spec(input=netspec.Input(channels=3, size=16), layers=[
        Conv(out=8, name="a"), Conv(out=8, name="b", inputs="input"), Add(inputs=("a", "b")),
        Upsample(scale=2, name="up")], outputs=["up", "a"])
    assert netspec.loads(spec.to_yaml()) == spec
    up, a = netspec.build(spec)(torch.randn(1, 3, 16, 16))
    assert up.shape == (1, 8, 32, 32) and a.shape == (1, 8, 16, 16)


def test_reserved_names_cover_every_module_attribute() -> None:
    import re

    built = netspec.build(netspec.loads("input: {channels: 2}\nlayers:\n  - {conv: {out: 2}, name: a}\n"))
    attributes = {n for n in set(dir(torch.fx.GraphModule)) | set(dir(torch.nn.Module)) | set(vars(built)) | set(dir(built))
                  if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", n)} - {"a"}
    assert "shape_env" in attributes  # an instance attribute (None), which dir() of the class does not list
    assert attributes <= RESERVED_NAMES, sorted(attributes - RESERVED_NAMES)


def _name_probe(name: str) -> str:
    return ("input: {channels: 2, size: 4}\nlayers:\n"
            f"  - {{conv: {{out: 2, kernel: 1}}, name: {name}}}\n"
            "  - {conv: {out: 2, kernel: 1}, name: after}\n"
            f"  - {{add: {{}}, from: [{name}, after], name: total}}\n"
            f"outputs: [total, {name}]\n")


@pytest.mark.parametrize("name", ["self", "shape_env", "training", "graph", "code", "meta", "forward"])
def test_names_that_break_the_generated_forward_are_refused(name: str) -> None:
    """``name: self`` rebinds the forward's ``self``; ``shape_env`` is an attribute every GraphModule sets to None:
    both used to check and build, then fail at the first call."""
    what = "the generated forward's own argument" if name == "self" else "an attribute of torch modules"
    assert problems(_name_probe(name)) == [f"g.yaml:3:39: layers[0].name: the name {name!r} is reserved ({what}): "
                                           "choose another"]


def _generated_code_names() -> list[str]:
    """Every lower-case identifier the generated forward or its globals could collide with: Python's builtins,
    torch.fx's own globals and the names its code generator refuses to shadow, and nn.Module's attributes."""
    import builtins
    import keyword
    import re

    from torch.fx import graph as fx_graph

    names = set(dir(builtins)) | set(getattr(fx_graph, "_illegal_names", {})) | set(getattr(fx_graph, "_custom_builtins", {}))
    names |= {"self", "shape_env", "torch", "fx_pytree", "pytree", "math", "inf", "nan", "device", "getattr", "args",
              "kwargs", "input_1", "output", "result", "mod", "operator", "builtins", "wrap", "typing"}
    names |= set(dir(torch.fx.GraphModule)) | set(dir(torch.nn.Module))
    return sorted(n for n in names if re.fullmatch(r"[a-z][a-z0-9_]*", n) and not keyword.iskeyword(n) and n != "input")


def test_every_name_the_generated_code_could_collide_with_is_refused_or_works() -> None:
    """For each such name: the spec is refused at the name (reserved), or the built GraphModule's generated forward
    computes exactly what its children compute (torch.fx renames a node that would shadow a builtin or a global)."""
    names = _generated_code_names()
    assert len(names) > 120
    x = torch.randn(1, 2, 4, 4)
    worked = 0
    for name in names:
        text = _name_probe(name)
        if name in RESERVED_NAMES:
            assert any("is reserved" in line for line in problems(text)), name
            continue
        model = netspec.build(netspec.loads(text)).eval()
        total, first = model(x)
        expected = model.get_submodule(name)(x)
        torch.testing.assert_close(first, expected, rtol=0, atol=0, msg=name)
        torch.testing.assert_close(total, expected + model.after(expected), rtol=0, atol=0, msg=name)
        worked += 1
    assert worked > 80  # builtins such as `print`, `len`, `sum`, and `torch`, `inf` are fine names


def test_a_bare_kind_with_a_name_gets_a_hint() -> None:
    found = problems("input: {channels: 3, size: 8}\nlayers:\n  - conv: {out: 8}\n  - pam\n    name: sa\n")
    assert found == ["g.yaml:5:9: YAML syntax error: mapping values are not allowed here (a bare kind cannot carry "
                     "`name`: write `- pam:` or `- pam: {}`, then `name:` below it)"]


def test_check_lists_every_output_of_a_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "specs/yolov8n_cbam.yaml"]) == 0
    assert capsys.readouterr().out == ("specs/yolov8n_cbam.yaml: ok (24 layers, output (N, 84, 8400), "
                                       "3,165,764 params)\n")
    assert main(["check", "specs/danet_resnet50.yaml"]) == 0
    assert capsys.readouterr().out == ("specs/danet_resnet50.yaml: ok (22 layers, outputs out (N, 19, 512, 512), "
                                       "sa_out (N, 19, 512, 512), sc_out (N, 19, 512, 512), 47,462,651 params)\n")


def test_blocks_describes_the_graph_kinds_and_the_wiring(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["blocks"]) == 0
    out = capsys.readouterr().out
    for kind in ("concat", "add", "mul", "upsample", "upconv", "c2f", "sppf", "attention_gate"):
        assert f"\n{kind}: " in "\n" + out
    assert "  to: default None - resize to the H x W of this earlier entry's output" in out
    assert out.rstrip().splitlines()[-1].startswith("every entry also takes, beside its kind: name (")
