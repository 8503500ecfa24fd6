"""Issue 20: `define:` a sub-graph once, instantiate it with `repeat:` entries, and HRNet-W18-Small written so.

Instances are expanded into plain entries named `<instance>_<entry>`; a problem inside a definition is reported
at the definition's line, naming the instance(s) where it arises; the summary, drawing, scaling, round trip
and the hypothesis strategy cover it. specs/hrnet_w18_small.yaml has timm's count and computes what timm's
`hrnet_w18_small` computes (tests/timm_hrnet.py: timm's module layout, checked against timm itself).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given

import netspec
import network_references as reference
import timm_hrnet
from netspec import strategies as nst
from netspec.drawing import to_dot, to_mermaid
from netspec.entries import MAX_ENTRIES, MAX_NESTING
from netspec.layers import Conv
from netspec.repeat import Definition, Instance

SPECS = Path(__file__).resolve().parent.parent / "specs"

FUSE = """\
name: tiny_fpn
input: {channels: 3, size: 32}
define:
  fuse:
    inputs: [high, low]
    layers:
      - upsample: {to: high}
        from: low
      - add: {}
        from: [high, upsample1]
      - conv: {out: 16}
layers:
  - conv: {out: 16}
    name: c1
  - conv: {out: 16, stride: 2}
    name: c2
  - conv: {out: 16, stride: 2}
    name: c3
  - repeat: fuse
    from: [c2, c3]
    name: p2
  - repeat: fuse
    from: [c1, p2]
    name: p1
"""

EXPANDED = """\
name: tiny_fpn
input: {channels: 3, size: 32}
layers:
  - conv: {out: 16}
    name: c1
  - conv: {out: 16, stride: 2}
    name: c2
  - conv: {out: 16, stride: 2}
    name: c3
  - upsample: {to: c2}
    from: c3
    name: p2_upsample1
  - add: {}
    from: [c2, p2_upsample1]
    name: p2_add1
  - conv: {out: 16}
    name: p2_conv1
  - upsample: {to: c1}
    from: p2_conv1
    name: p1_upsample1
  - add: {}
    from: [c1, p1_upsample1]
    name: p1_add1
  - conv: {out: 16}
    name: p1_conv1
"""


def problems(text: str, name: str = "net.yaml") -> list[str]:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.summary(netspec.loads(text, name=name))
    return [str(problem) for problem in caught.value.problems]


# --- expansion ---------------------------------------------------------------------------------------


def test_instances_expand_into_prefixed_entries_reading_their_inputs() -> None:
    rows = netspec.summary(netspec.loads(FUSE)).rows
    assert [(row.name, row.inputs) for row in rows] == [
        ("c1", ("input",)), ("c2", ("c1",)), ("c3", ("c2",)),
        ("p2_upsample1", ("c3", "c2")), ("p2_add1", ("c2", "p2_upsample1")), ("p2_conv1", ("p2_add1",)),
        ("p1_upsample1", ("p2_conv1", "c1")), ("p1_add1", ("c1", "p1_upsample1")), ("p1_conv1", ("p1_add1",)),
    ]
    assert [row.info.shape.dims() for row in rows[3:]] == [(16, 16, 16)] * 3 + [(16, 32, 32)] * 3
    assert [row.instance for row in rows] == [None] * 3 + ["p2"] * 3 + ["p1"] * 3
    assert rows[4].path == ("define", "fuse", "layers", 1)


def test_a_repeat_spec_is_the_spec_written_out_by_hand() -> None:
    ours, by_hand = netspec.build(netspec.loads(FUSE)), netspec.build(netspec.loads(EXPANDED))
    assert [name for name, _ in ours.named_children()] == [name for name, _ in by_hand.named_children()]
    by_hand.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), by_hand.eval()(x), rtol=0, atol=0)
    assert netspec.summary(netspec.loads(FUSE)).params == netspec.summary(netspec.loads(EXPANDED)).params == 9_808


SEVERAL = """\
input: {channels: 4, size: 8}
define:
  split:
    inputs: [x]
    layers:
      - conv: {out: 8}
        name: a
      - conv: {out: 2, kernel: 1}
        from: x
        name: b
    outputs: [a, b]
  twice:
    inputs: [x]
    layers:
      - repeat: split
        name: s
      - conv: {out: 4}
        from: s_a
      - conv: {out: 4, kernel: 1}
        from: s_b
      - add: {}
        from: [conv1, conv2, x]
layers:
  - repeat: split
    name: first
  - conv: {out: 4}
    from: first_a
    name: back
  - repeat: twice
  - repeat: twice
outputs: [twice1, twice2, first_b]
"""


def test_several_outputs_nested_instances_and_automatic_names() -> None:
    spec = netspec.loads(SEVERAL)
    summary = netspec.summary(spec)
    names = [row.name for row in summary.rows]
    assert names == ["first_a", "first_b", "back", "twice1_s_a", "twice1_s_b", "twice1_conv1", "twice1_conv2",
                     "twice1_add1", "twice2_s_a", "twice2_s_b", "twice2_conv1", "twice2_conv2", "twice2_add1"]
    assert summary.outputs == ("twice1_add1", "twice2_add1", "first_b")  # an instance's name is its one output
    rows = {row.name: row for row in summary.rows}
    assert rows["twice2_s_a"].inputs == ("twice1_add1",)  # the entry before an instance of one input
    assert rows["twice1_add1"].scope == (("twice1", "twice"),)
    assert rows["twice2_s_b"].scope == (("twice2", "twice"), ("twice2_s", "split"))
    model = netspec.build(spec)
    outputs = model(torch.randn(1, 4, 8, 8))
    assert [tuple(out.shape) for out in outputs] == [(1, 4, 8, 8), (1, 4, 8, 8), (1, 2, 8, 8)]


def test_the_default_output_of_a_last_instance_is_all_its_outputs() -> None:
    text = SEVERAL.split("  twice:")[0] + "layers:\n  - repeat: split\n"
    assert netspec.summary(netspec.loads(text)).outputs == ("split1_a", "split1_b")


# --- located errors --------------------------------------------------------------------------------


def test_a_problem_in_a_definition_is_at_its_line_naming_the_instance() -> None:
    text = FUSE.replace("  - conv: {out: 16, stride: 2}\n    name: c3", "  - conv: {out: 8, stride: 2}\n    name: c3")
    assert problems(text) == [
        "net.yaml:9:14: define.fuse.layers[1].add: add needs equal shapes (or a size-1 gate such as (N, C, 1, 1)): "
        "c2 (N, 16, 16, 16) and p2_upsample1 (N, 8, 16, 16) (in instance p2)"]


def test_the_same_problem_in_every_instance_is_reported_once_naming_them_all() -> None:
    assert problems(FUSE.replace("{to: high}", "{to: hig}")) == [
        "net.yaml:7:24: define.fuse.layers[0].upsample.to: unknown name 'hig' (did you mean 'high'?) "
        "(in instances p2, p1)"]


TYPO = [("      - add: {}", "      - ad: {}")]
UNNAMED = [("    name: p2\n  - repeat: fuse\n    from: [c1, p2]\n    name: p1\n",
            "  - repeat: fuse\n    from: [c1, fuse1]\n")]
UNUSED = [("  - repeat: fuse\n    from: [c2, c3]\n    name: p2\n  - repeat: fuse\n    from: [c1, p2]\n"
            "    name: p1\n", "")]


@pytest.mark.parametrize(("changes", "expected"), [
    ([("      - conv: {out: 16}\nlayers", "      - conv: {out: 16, kernal: 3}\nlayers")],
     "net.yaml:11:25: define.fuse.layers[2].conv.kernal: unknown field 'kernal' (did you mean 'kernel'?); known: out, "
     "kernel, stride, padding, dilation, groups, bias, norm, act, widen_only (in instances p2, p1)"),
    ([("      - conv: {out: 16}\nlayers", "      - conv: {out: -4}\nlayers")],
     "net.yaml:11:21: define.fuse.layers[2].conv.out: input should be greater than or equal to 1 (got -4) "
     "(in instances p2, p1)"),
    (TYPO, "net.yaml:9:9: define.fuse.layers[1].ad: unknown kind 'ad' (did you mean 'add'?) (in instances p2, p1)"),
    (TYPO + UNNAMED,  # automatic instance names
     "net.yaml:9:9: define.fuse.layers[1].ad: unknown kind 'ad' (did you mean 'add'?) (in instances fuse1, fuse2)"),
    (TYPO + UNUSED, "net.yaml:9:9: define.fuse.layers[1].ad: unknown kind 'ad' (did you mean 'add'?)"),
])
def test_a_problem_met_while_a_definition_is_validated_names_its_instances_too(
        changes: list[tuple[str, str]], expected: str) -> None:
    """Param problems are found before any instance is expanded: they name the instances all the same."""
    text = FUSE
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    assert problems(text) == [expected]


def test_a_definition_problem_names_nested_instances_in_expansion_order_and_counts_the_rest() -> None:
    hrnet = (SPECS / "hrnet_w18_small.yaml").read_text()
    text = hrnet.replace("      - conv: {out: 16, kernel: 1, act: none}", "      - conv: {out: 16, kernel: 1, act: no}")
    [problem] = problems(text, "hrnet.yaml")
    assert problem.startswith("hrnet.yaml:15:41: define.up16.layers[0].conv.act: input should be 'relu'")
    assert problem.endswith(" (in instances stage2_u0_1, stage3_u0_1, stage3_u0_2, stage4_u0_1, stage4_u0_2, "
                            "stage4_u0_3)")
    many = FUSE.replace("      - conv: {out: 16}\nlayers", "      - conv: {out: 0}\nlayers") + "".join(
        f"  - repeat: fuse\n    from: [c1, p{i - 1}]\n    name: p{i}\n" for i in range(3, 12))
    assert problems(many)[0].endswith("(got 0) (in instances p2, p1, p3, p4, p5, p6, p7, p8 and 3 more)")


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("  - repeat: fuse\n    from: [c2, c3]", "  - repeat: fuze\n    from: [c2, c3]",
     "net.yaml:19:13: layers[3].repeat: unknown definition 'fuze' (did you mean 'fuse'?)"),
    ("from: [c2, c3]", "from: [c2]", "net.yaml:20:11: layers[3].from: fuse takes 2 inputs (high, low), got 1"),
    ("from: [c2, c3]", "from: c2", "net.yaml:20:11: layers[3].from: fuse takes 2 inputs (high, low), got 1"),
    ("from: [c1, p2]", "from: [c1, p3]", "net.yaml:23:16: layers[4].from[1]: unknown name 'p3'"),
    ("from: [c2, c3]", "from: [c2, p1]",
     "net.yaml:20:16: layers[3].from[1]: 'p1' is defined later (layers[4]): an entry reads earlier ones only, "
     "so move it below"),
    ("from: low", "from: input",
     "net.yaml:8:15: define.fuse.layers[0].from: unknown name 'input': a definition's entries read its `inputs` "
     "(high, low), not the network's input (in instances p2, p1)"),
    ("      - conv: {out: 16}\nlayers:", "      - conv: {out: 16}\n    outputs: [conv2]\nlayers:",
     "net.yaml:12:15: define.fuse.outputs[0]: unknown name 'conv2' (did you mean 'conv1'?) (in instances p2, p1)"),
    ("    name: p2\n", "    name: p2\n    bias: 1\n",
     "net.yaml:22:5: layers[3].bias: unknown field 'bias' beside `repeat`: an instance has only `repeat`, `name` "
     "and `from` (its entries are in its definition)"),
    ("    name: c3\n  - repeat: fuse\n    from: [c2, c3]", "    name: p2_conv1\n  - repeat: fuse\n    from: [c2, p2_conv1]",
     "net.yaml:11:15: define.fuse.layers[2].conv: the name 'p2_conv1' is taken by layers[2]: choose another "
     "(in instance p2)"),
])
def test_wiring_problems_are_located(old: str, new: str, expected: str) -> None:
    assert old in FUSE
    assert problems(FUSE.replace(old, new)) == [expected]


def test_an_unknown_definition_is_one_problem_not_one_more_per_output_read() -> None:
    """`first_a` of an instance whose definition is misspelt is not reported again as an unknown name (here, and
    inside a definition: `s_a`, `s_b`)."""
    text = SEVERAL.replace("  - repeat: split\n    name: first", "  - repeat: splt\n    name: first").replace(
        "      - repeat: split\n        name: s", "      - repeat: splitt\n        name: s")
    assert problems(text) == [
        "net.yaml:15:17: define.twice.layers[0].repeat: unknown definition 'splitt' (did you mean 'split'?) "
        "(in instances twice1, twice2)",
        "net.yaml:24:13: layers[0].repeat: unknown definition 'splt' (did you mean 'split'?)"]
    assert problems(SEVERAL.replace("from: first_a", "from: firsts_a").replace("repeat: split\n    name: first",
                                                                              "repeat: splt\n    name: first")) == [
        "net.yaml:24:13: layers[0].repeat: unknown definition 'splt' (did you mean 'split'?)",
        "net.yaml:27:11: layers[1].from: unknown name 'firsts_a' (did you mean 'first'?)"]


def test_several_outputs_are_read_one_by_one() -> None:
    text = SEVERAL.replace("from: first_a", "from: first")
    assert problems(text) == ["net.yaml:27:11: layers[1].from: 'first' has 2 outputs: refer to one of first_a, first_b"]


def test_a_definition_that_uses_itself_is_an_error_not_a_hang() -> None:
    text = SEVERAL.replace("      - repeat: split\n        name: s", "      - repeat: twice\n        name: s")
    assert problems(text)[0] == ("net.yaml:15:17: define.twice.layers[0].repeat: 'twice' uses itself "
                                 "(twice -> twice): a definition cannot contain itself")


def test_an_exponential_expansion_is_refused_before_anything_is_expanded() -> None:
    levels = ["d0:\n    inputs: [x]\n    layers: [conv: {out: 2}]"]
    for level in range(1, 8):  # each level instantiates the one below 10 times: 10**7 entries
        levels.append(f"d{level}:\n    inputs: [x]\n    layers:\n" + f"      - repeat: d{level - 1}\n" * 10)
    text = "input: {channels: 2, size: 4}\ndefine:\n  " + "\n  ".join(levels) + "layers:\n  - repeat: d7\n"
    assert problems(text) == [f"net.yaml:{text.count(chr(10))}:13: layers[0].repeat: the spec expands to more than "
                              f"{MAX_ENTRIES:,} entries here (instances of definitions that hold instances multiply): "
                              "use fewer or smaller instances"]


def test_a_bad_param_deep_in_an_exponential_expansion_names_a_few_instances_without_walking_them_all() -> None:
    levels = ["d0:\n    inputs: [x]\n    layers: [conv: {out: 0}]"]
    for level in range(1, 8):  # 10**7 instances of d0: the names stop after MAX_NAMED_SITES sites walked
        levels.append(f"d{level}:\n    inputs: [x]\n    layers:\n" + f"      - repeat: d{level - 1}\n" * 10)
    text = "input: {channels: 2, size: 4}\ndefine:\n  " + "\n  ".join(levels) + "layers:\n  - repeat: d7\n"
    [problem] = problems(text)
    assert problem.startswith("net.yaml:5:26: define.d0.layers[0].conv.out: input should be greater than or equal "
                              "to 1 (got 0) (in instances d7_1_d6_1_d5_1_d4_1_d3_1_d2_1_d1_1_d0_1, ")
    assert problem.endswith(", d7_1_d6_1_d5_1_d4_1_d3_1_d2_1_d1_1_d0_8 and more)")


def test_definitions_nested_too_deep_are_one_located_error_not_a_recursion_error() -> None:
    chain = ["  d0:\n    inputs: [x]\n    layers: [conv: {out: 2}]"]
    chain += [f"  d{i}:\n    inputs: [x]\n    layers:\n      - repeat: d{i - 1}" for i in range(1, 3000)]
    text = "input: {channels: 2, size: 4}\ndefine:\n" + "\n".join(chain) + "\nlayers:\n  - repeat: d2999\n"
    line = text.split("\n").index(f"  d{MAX_NESTING}:") + 4
    assert problems(text) == [f"net.yaml:{line}:17: define.d{MAX_NESTING}.layers[0].repeat: definitions nest deeper "
                              f"than {MAX_NESTING} levels here (d{MAX_NESTING} -> d{MAX_NESTING - 1} -> ...)"]


def test_an_unused_definition_is_a_warning() -> None:
    text = FUSE.replace("layers:\n  - conv: {out: 16}\n    name: c1",
                        "  spare:\n    inputs: [x]\n    layers: [se]\nlayers:\n  - conv: {out: 16}\n    name: c1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        netspec.summary(netspec.loads(text, name="net.yaml"))
    assert [str(w.message) for w in caught] == [
        "net.yaml:12:3: define.spare: the definition 'spare' is not used by any `repeat:` entry (so it is not "
        "checked either)"]


def test_an_unused_entry_of_a_definition_is_one_warning_naming_the_instances() -> None:
    text = FUSE.replace("      - conv: {out: 16}\nlayers:", "      - conv: {out: 16}\n      - conv: {out: 4}\n"
                        "        from: high\n    outputs: [conv1]\nlayers:")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        netspec.summary(netspec.loads(text, name="net.yaml"))
    assert [str(w.message) for w in caught] == [
        "net.yaml:12:9: define.fuse.layers[3].conv: the output of 'conv2' is not used by any entry of its definition "
        "nor listed in its `outputs`: it is computed for nothing (in instances p2, p1)"]


# --- round trip, Python API, summary, drawing, scaling -------------------------------------------------


def test_round_trip_and_the_python_api() -> None:
    spec = netspec.loads(FUSE)
    assert netspec.loads(spec.to_yaml()) == spec
    assert "define:\n  fuse:\n    inputs: [high, low]" in spec.to_yaml()
    built = netspec.Spec(name="tiny_fpn", input={"channels": 3, "size": 32},
                         define={"fuse": Definition(inputs=["high", "low"], layers=[
                             {"upsample": {"to": "high"}, "from": "low"}, {"add": {}, "from": ["high", "upsample1"]},
                             Conv(out=16)])},
                         layers=[Conv(out=16, name="c1"), Conv(out=16, stride=2, name="c2"),
                                 Conv(out=16, stride=2, name="c3"),
                                 Instance(repeat="fuse", inputs=("c2", "c3"), name="p2"),
                                 {"repeat": "fuse", "from": ["c1", "p2"], "name": "p1"}])
    assert built == spec
    hrnet = netspec.load(SPECS / "hrnet_w18_small.yaml")
    assert netspec.loads(hrnet.to_yaml()) == hrnet


def test_summary_rows_and_json_show_the_expanded_entries() -> None:
    summary = netspec.summary(netspec.loads(FUSE))
    text = str(summary)
    assert "p2_add1       add       c2, p2_upsample1  (N, 16, 16, 16)" in text
    assert [layer["name"] for layer in summary.to_dict()["layers"]][3:6] == ["p2_upsample1", "p2_add1", "p2_conv1"]


def test_the_drawing_boxes_each_instance_with_its_real_edges() -> None:
    summary = netspec.summary(netspec.loads(SEVERAL))
    dot = to_dot(summary)
    assert 'label="twice2 (twice)"' in dot and 'label="twice2_s (split)"' in dot
    assert dot.count("subgraph cluster_") == 5  # first, twice1, twice1_s, twice2, twice2_s
    ids = {row.name: f"n{index}" for index, row in enumerate(summary.rows, start=1)}
    assert f"{ids['twice1_add1']} -> {ids['twice2_s_a']};" in dot
    mermaid = to_mermaid(summary)
    assert mermaid.count("subgraph ") == 5 and mermaid.count("\n  end") == 3  # three top-level boxes


def test_scaling_reaches_the_entries_of_definitions() -> None:
    spec = netspec.loads(FUSE.replace("input:", "scale: {width: 0.5}\ninput:"))
    rows = {row.name: row for row in netspec.summary(spec).rows}
    assert rows["p1_conv1"].info.shape.channels == rows["c1"].info.shape.channels == 8
    model = netspec.build(spec)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 8, 32, 32)


@given(nst.repeat_specs())
def test_drawn_repeat_specs_build_round_trip_and_count_their_parameters(spec: netspec.Spec) -> None:
    summary = netspec.summary(spec)
    model = netspec.build(spec)
    assert summary.params == sum(p.numel() for p in model.parameters())
    assert netspec.loads(spec.to_yaml()) == spec
    with torch.no_grad():
        outputs = model.eval()(torch.randn(1, *summary.input.dims()))
    outputs = outputs if len(summary.output_shapes) > 1 else (outputs,)
    outputs = [out[0] if isinstance(out, tuple) else out for out in outputs]  # segment: (detections, protos)
    assert [tuple(out.shape[1:]) for out in outputs] == [shape.dims() for _, shape in summary.output_shapes]


# --- HRNet-W18-Small ---------------------------------------------------------------------------------

HRNET_W18_SMALL = 13_187_464  # timm 1.0.31 hrnet_w18_small


@pytest.fixture(scope="module")
def hrnet_spec() -> netspec.Spec:
    return netspec.load(SPECS / "hrnet_w18_small.yaml")


def test_hrnet_w18_small_has_timms_parameter_count(hrnet_spec: netspec.Spec) -> None:
    assert netspec.summary(hrnet_spec).params == HRNET_W18_SMALL
    assert sum(p.numel() for p in timm_hrnet.HighResolutionNet().parameters()) == HRNET_W18_SMALL
    assert sum(p.numel() for p in netspec.build(hrnet_spec).parameters()) == HRNET_W18_SMALL
    instances = {row.scope[0] for row in netspec.summary(hrnet_spec).rows if row.scope}
    assert instances == {("stage2", "hr2"), ("stage3", "hr3"), ("stage4", "hr4")}
    uses = {row.scope[-1] for row in netspec.summary(hrnet_spec).rows if len(row.scope) == 2}
    assert sorted(definition for _, definition in uses).count("up16") == 6  # one definition, six instances


@pytest.mark.slow
def test_hrnet_w18_small_computes_what_timm_computes(hrnet_spec: netspec.Spec) -> None:
    torch.manual_seed(0)
    theirs = reference.randomize(timm_hrnet.HighResolutionNet()).eval()
    small = hrnet_spec.model_copy(update={"input": hrnet_spec.input.model_copy(update={"size": (64, 64)})})
    ours = netspec.build(small)
    report = netspec.load_weights(ours, theirs.state_dict(), strict=True)
    assert report.complete and not report.new and not report.unused and not report.mismatched
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = theirs(x), ours.eval()(x)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("entry", "expected"), [
    ("- repeat", "net.yaml:3:5: layers[0]: `repeat` names the definition it instantiates: `- repeat: NAME` "
                 "(a key of `define`)"),
    ("- repeat:", "net.yaml:3:12: layers[0].repeat: `repeat` names the definition it instantiates: "
                  "`- repeat: NAME` (a key of `define`)"),
    ("- {repeat: fuse, conv: {out: 8}}", "net.yaml:3:20: layers[0].conv: unknown field 'conv' beside `repeat`: an "
                                         "instance has only `repeat`, `name` and `from` (its entries are in its "
                                         "definition)"),
])
def test_a_malformed_instance_is_located(entry: str, expected: str) -> None:
    assert problems(f"input: {{channels: 3}}\nlayers:\n  {entry}\n") == [expected]


def test_no_kind_can_take_the_name_repeat() -> None:
    class Repeat(netspec.Layer):
        kind = "repeat"

    with pytest.raises(ValueError, match="reserved"):
        netspec.register(Repeat)


@pytest.mark.parametrize(("define", "expected"), [
    ("{Bad: {inputs: [x], layers: [se]}}", "net.yaml:1:10: define.Bad: a name is lower case letters, digits and _, "
                                           "not starting with a digit: [a-z_][a-z0-9_]*, at most 64 characters "
                                           "(got 'Bad')"),
    ("{a: {inputs: [x, x], layers: [se]}}", "net.yaml:1:22: define.a.inputs: each input needs its own name: 'x' is "
                                            "listed twice (got ['x', 'x']) (in instance a1)"),
    ("{a: {inputs: [x], layers: []}}", "net.yaml:1:35: define.a.layers: value should have at least 1 item after "
                                       "validation, not 0 (got []) (in instance a1)"),
    ("{a: 5}", "net.yaml:1:13: define.a: input should be a valid dictionary or instance of Definition (got 5) "
               "(in instance a1)"),
])
def test_a_malformed_definition_is_located(define: str, expected: str) -> None:
    assert problems(f"define: {define}\ninput: {{channels: 3, size: 8}}\nlayers:\n  - repeat: a\n") == [expected]
