"""Issue: core. Every error class is reported at file:line:col with a clear message, all at once."""
from __future__ import annotations

import textwrap

import pytest

import netspec
from netspec.parsing import kinds_of
from netspec import SpecError


def problems(text: str) -> list[tuple[int | None, int | None, str, str]]:
    with pytest.raises(SpecError) as caught:
        netspec.check(netspec.loads(textwrap.dedent(text), name="bad.yaml"))
    result = []
    for problem in caught.value.problems:
        assert problem.file == "bad.yaml"
        result.append((problem.line, problem.column, netspec.errors.format_path(problem.path), problem.message))
    return result


def test_yaml_syntax_error_is_located() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3
        layers: [se]
        """)
    assert (line, column, path) == (1, 8, "")  # where the '{' that is never closed was opened
    assert message.startswith("YAML syntax error: this '{' is never closed")


def test_unknown_kind_suggests_the_close_one() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3}
        layers:
          - conv: {out: 8}
          - see: {reduction: 4}
        """)
    assert (line, column, path) == (4, 5, "layers[1].see")
    assert message == "unknown kind 'see' (did you mean 'se'?)"


def test_unknown_bare_kind_points_at_the_name() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3}
        layers: [conv: {out: 8}, maxpul]
        """)
    assert (line, column, path) == (2, 26, "layers[1].maxpul")
    assert "did you mean 'maxpool'" in message


def test_misspelled_field_suggests_the_right_one() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3}
        layers:
          - conv: {out: 8, strid: 2}
        """)
    assert (line, column, path) == (3, 20, "layers[0].conv.strid")
    assert "unknown field 'strid' (did you mean 'stride'?)" in message


def test_wrong_types_and_ranges_are_all_reported() -> None:
    found = problems("""\
        input: {channels: 3, size: [32, 0]}
        layers:
          - conv: {out: true}
          - conv: {out: "64", kernel: 3.5}
          - dropout: {p: 1.5}
          - stage: {out: 16, block: residual}
        """)
    by_path = {path: (line, column, message) for line, column, path, message in found}
    assert by_path["input.size[1]"][:2] == (1, 33)
    assert by_path["layers[0].conv.out"][:2] == (3, 17)
    assert "valid integer" in by_path["layers[0].conv.out"][2]
    assert by_path["layers[1].conv.out"][:2] == (4, 17)
    assert by_path["layers[1].conv.kernel"][:2] == (4, 31)
    assert by_path["layers[2].dropout.p"][:2] == (5, 18)
    assert "less than or equal to 1" in by_path["layers[2].dropout.p"][2]
    assert by_path["layers[3].stage.block"][:2] == (6, 29)
    assert "input should be 'plain', 'basic', 'bottleneck', 'inverted', 'fused', 'regnet' or 'convnext'" in by_path["layers[3].stage.block"][2]


def test_missing_required_field_points_at_the_layer() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3}
        layers:
          - linear: {bias: false}
        """)
    assert (line, column, path) == (3, 13, "layers[0].linear.out")
    assert message == "missing required field 'out'"


def test_stride_that_shrinks_the_map_below_1x1() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3, size: 4}
        layers:
          - conv: {out: 8, kernel: 3, padding: 0}
          - conv: {out: 8, kernel: 3, stride: 2, padding: 0}
        """)
    assert (line, column, path) == (4, 51, "layers[1].conv.padding")  # not the stride: it never shrinks a map to 0
    assert "2x2 map would shrink to 0x0" in message


def test_reduction_larger_than_channels_points_at_the_reduction() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3, size: 32}
        layers:
          - conv: {out: 16}
          - se: {reduction: 32}
        """)
    assert (line, column, path) == (4, 21, "layers[1].se.reduction")
    assert message == "must be <= 16 (the input has 16 channels)"


def test_reduction_inside_a_stage_attention() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3}
        layers:
          - stage: {out: 8, attention: {se: {reduction: 9}}}
        """)
    assert (line, column, path) == (3, 49, "layers[0].stage.attention.se.reduction")
    assert "must be <= 8" in message


def test_linear_on_a_feature_map_needs_a_pool() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3, size: 8}
        layers:
          - conv: {out: 8}
          - linear: {out: 10}
        """)
    assert (line, column, path) == (4, 13, "layers[1].linear")
    assert "add `avgpool` or `flatten`" in message


def test_schema_and_semantic_errors_are_reported_together() -> None:
    found = problems("""\
        input: {channels: 3, size: 8}
        layers:
          - conv: {out: 4}
          - se: {reduction: 8}
          - conv: {out: 8, kernal: 3}
        """)
    assert [(line, path) for line, _, path, _ in found] == [(4, "layers[1].se.reduction"), (5, "layers[2].conv.kernal")]


def test_duplicate_keys_are_an_error() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3}
        layers:
          - conv: {out: 8, out: 16}
        """)
    assert (line, column) == (3, 20)
    assert message == "duplicate key 'out' (first defined at line 3)"


def test_layer_with_two_kinds_explains_the_indentation_mistake() -> None:
    [(line, column, path, message)] = problems("""\
        input: {channels: 3}
        layers:
          - conv: {out: 8}
            kernel: 3
        """)
    assert (line, column, path) == (3, 5, "layers[0]")
    assert "found keys 'conv', 'kernel'" in message


def test_top_level_errors() -> None:
    [(line, column, path, message)] = problems("input: {channels: 3}\nlayers: []\nextra: 1\n")[1:] or [(None,) * 4]
    assert (line, column, path) == (3, 1, "extra")
    assert "unknown field 'extra'" in message
    [(line, column, path, message)] = problems("layers: [se]\n")
    assert (line, column, path, message) == (1, 1, "input", "missing required field 'input'")


def test_error_string_is_one_line_per_problem() -> None:
    with pytest.raises(SpecError) as caught:
        netspec.loads("input: {channels: 0}\nlayers: [sse]\n", name="specs/bad.yaml")
    lines = str(caught.value).splitlines()
    assert lines == [
        "specs/bad.yaml:1:19: input.channels: input should be greater than or equal to 1 (got 0)",
        "specs/bad.yaml:2:10: layers[0].sse: unknown kind 'sse' (did you mean 'se'?)",
    ]
    assert isinstance(caught.value, ValueError)


# -- issue 10, section 4: messages a newcomer stumbled on ---------------------------------------------------


def _problems(text: str) -> list[str]:
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.loads(text, name="spec.yaml"))
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.parametrize("parser", ["libyaml", "python"])
@pytest.mark.parametrize(
    "text, location",
    [("input:\n\tchannels: 3\nlayers: [se]\n", "2:1"), ("input: {channels: 3}\nlayers:\n\t- se\n", "3:1")],
)
def test_a_tab_in_the_indentation_says_tab(text: str, location: str, parser: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from netspec import source

    if parser == "python":
        monkeypatch.setattr(source, "FAST_LOADER", source.PURE_LOADER)
    assert _problems(text) == [f"spec.yaml:{location}: YAML syntax error: a tab character: YAML indents with spaces, "
                               "never tabs"]


INDENTATION = [
    ("input:\n  channels: 3\n size: 8\nlayers:\n  - conv: {out: 8}\n",
     "spec.yaml:3:2: YAML syntax error: bad indentation: line 3 is indented 1 space, which lines up with nothing above "
     "it: the mapping it follows (from line 1) has its keys at 0 spaces; indent the keys of one mapping, and the '-' "
     "items of one list, by the same number of spaces"),
    ("input: {channels: 3}\n layers:\n  - conv: {out: 8}\n",
     "spec.yaml:2:2: YAML syntax error: bad indentation: line 2 is indented 1 space, which lines up with nothing above"),
    ("input: {channels: 3}\nlayers:\n  - conv: {out: 8}\n     - se\n",
     "spec.yaml:4:6: YAML syntax error: bad indentation: line 4 is indented 5 spaces, which lines up with nothing above "
     "it: the mapping it follows (from line 3) has its keys at 4 spaces"),
    ("input: {channels: 3}\nlayers:\n- conv: {out: 8}\n  - se\n",
     "spec.yaml:4:3: YAML syntax error: bad indentation: line 4's '-' is indented 2 spaces, like the keys of the "
     "mapping from line 3, so YAML expects a key there: a new item of the list lines up with line 3's '-' (0 spaces)"),
    ("input:\n  channels: 3\n   size: 8\nlayers:\n  - conv: {out: 8}\n",
     "spec.yaml:3:4: YAML syntax error: bad indentation: line 3 is indented 3 spaces, deeper than line 2 (2 spaces), so "
     "YAML reads it as the rest of line 2's value: indent the keys of one mapping by the same number of spaces"),
    ("input: {channels: 3}\nlayers:\n  - se:\n      reduction: 4\n     act: relu\n",
     "spec.yaml:5:6: YAML syntax error: bad indentation: line 5 is indented 5 spaces, which lines up with nothing above "
     "it: the mapping it follows (from line 3) has its keys at 4 spaces"),
]


@pytest.mark.parametrize("parser", ["libyaml", "python"])
@pytest.mark.parametrize("text, expected", INDENTATION)
def test_bad_indentation_names_the_line_in_plain_words(text: str, expected: str, parser: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML says "while parsing a block mapping expected <block end>, but found ..." or "mapping values are not
    allowed here"; netspec names the line whose indentation is off, how it is indented, and what it should line up
    with (as it does for a tab or an unclosed bracket)."""
    from netspec import source

    if parser == "python":
        monkeypatch.setattr(source, "FAST_LOADER", source.PURE_LOADER)
    found = _problems(text)
    assert len(found) == 1 and found[0].startswith(expected), found
    assert "<block end>" not in found[0] and "<block" not in found[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("input: {channels: 3}\nlayers: [se, {conv: {out: 3}}\n\n\n",
         "spec.yaml:2:9: YAML syntax error: this '[' is never closed: the file ends before its ']'"),
        ("input: {channels: 3}\nlayers: [se",
         "spec.yaml:2:9: YAML syntax error: this '[' is never closed: the file ends before its ']'"),
        ("input: {channels: 3\nlayers: [se]\n",
         "spec.yaml:1:8: YAML syntax error: this '{' is never closed: line 2 comes before its '}' "
         "(expected ',' or '}', but got ':')"),
        ('name: "abc\ninput: {channels: 3}\nlayers: [se]\n',
         "spec.yaml:1:7: YAML syntax error: this '\"' is never closed: the file ends before its '\"'"),
    ],
)
def test_an_unclosed_bracket_is_located_where_it_was_opened(text: str, expected: str) -> None:
    assert _problems(text) == [expected]


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("conv: {out: 8, act: ReLU}", "layers[0].conv.act: input should be 'relu', 'relu6', 'leaky_relu', 'silu', "
         "'swish', 'gelu', 'hardswish', 'hardsigmoid', 'mish', 'sigmoid', 'tanh' or 'none' (got 'ReLU') (did you mean 'relu'?)"),
        ("conv: {out: 8, act: leakyrelu}", "(got 'leakyrelu') (did you mean 'leaky_relu'?)"),
        ("conv: {out: 8, norm: bn}", "(got 'bn') (did you mean 'batch'?)"),
        ("conv: {out: 8, norm: BatchNorm2d}", "(got 'BatchNorm2d') (did you mean 'batch'?)"),
        ("stage: {block: Basic, out: 8}", "(got 'Basic') (did you mean 'basic'?)"),
        ("conv: {out_channels: 8}", "layers[0].conv.out_channels: unknown field 'out_channels' (did you mean 'out'?)"),
        ("conv: {out: 8, kernel_size: 3}", "unknown field 'kernel_size' (did you mean 'kernel'?)"),
        ("stage: {out: 8, attention: sqeeze}", "layers[0].stage.attention.sqeeze: unknown kind 'sqeeze'; an attention "
         f"kind is one of {', '.join(kinds_of('attention'))}"),
        ("stage: {out: 8, attention: SE}", "unknown kind 'SE' (did you mean 'se'?)"),
        ("stage: {out: 8, attention: non_local}", "unknown kind 'non_local' (did you mean 'nonlocal'?)"),
        ("CBAM", "unknown kind 'CBAM' (did you mean 'cbam'?)"),
    ],
)
def test_did_you_mean_for_enum_values_fields_and_attention_kinds(entry: str, expected: str) -> None:
    found = _problems(f"input: {{channels: 3, size: 8}}\nlayers:\n  - {entry}\n")
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize(
    "params, blamed",
    [("kernel: 7, padding: 0", "padding"), ("kernel: 3, dilation: 3, padding: 0", "padding"), ("dilation: 5, padding: 1", "padding"),
     ("kernel: 5, stride: 2, padding: 0", "padding")],
)
def test_a_map_that_shrinks_to_nothing_blames_what_the_user_wrote(params: str, blamed: str) -> None:
    (found,) = _problems(f"input: {{channels: 3, size: 3}}\nlayers:\n  - conv: {{out: 8, {params}}}\n")
    column = f"  - conv: {{out: 8, {params}}}".index(f"{blamed}:") + len(blamed) + 3
    assert found.startswith(f"spec.yaml:3:{column}: layers[0].conv.{blamed}: the 3x3 map would shrink to "), found
    assert "stride" not in found.split(":")[3]


def test_python_constructors_raise_spec_error_as_yaml_does() -> None:
    from netspec.layers import SE, Conv, Stage

    with pytest.raises(netspec.SpecError) as caught:
        Conv(out="64")
    assert str(caught.value) == "conv.out: input should be a valid integer (got '64')"
    assert caught.value.problems[0].path == ("conv", "out")
    with pytest.raises(netspec.SpecError, match="unknown kind 'sse' \\(did you mean 'se'\\?\\)"):
        Stage(out=8, attention="sse")
    with pytest.raises(netspec.SpecError, match="^channels: input should be greater than or equal to 1"):
        netspec.Input(channels=0)
    with pytest.raises(ValueError):  # a SpecError is a ValueError, as pydantic's ValidationError is
        SE(reduction=0)
