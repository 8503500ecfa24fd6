"""Issue: core. Every error class is reported at file:line:col with a clear message, all at once."""
from __future__ import annotations

import textwrap

import pytest

import netspec
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
    assert (line, column, path) == (2, 7, "")
    assert message.startswith("YAML syntax error")


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
    assert "'plain', 'basic', 'bottleneck' or 'inverted'" in by_path["layers[3].stage.block"][2]


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
    assert (line, column, path) == (4, 39, "layers[1].conv.stride")
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
