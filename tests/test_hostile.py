"""Hostile or broken input: one test per class, each asserting the message and the location.

Time and memory bounds here are generous ceilings that only a hang or an unbounded allocation would
cross; they are not benchmarks (those live in benchmarks/).
"""
from __future__ import annotations

import io
import os
import resource
import time
import tracemalloc
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

import netspec
from netspec import source
from netspec.cli import main
from netspec.compiler import DEFAULT_MAX_ACTIVATIONS, DEFAULT_MAX_PARAMS
from netspec.files import write_atomic
from netspec.source import MAX_BYTES, MAX_DEPTH, MAX_NODES

VALID = "input: {channels: 3, size: 32}\nlayers:\n  - conv: {out: 16}\n  - se: {reduction: 4}\n"


def problems(text: str | bytes) -> list[str]:
    """``file:line:col: path: message`` of every problem in ``text`` (which must be invalid)."""
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.loads(text, name="spec.yaml"))
    for problem in caught.value.problems:
        assert problem.line is not None and problem.column is not None, problem
    return [str(problem) for problem in caught.value.problems]


def bounded(call: Callable[[], Any], *, seconds: float, megabytes: float) -> Any:
    """Run ``call`` under tracemalloc; assert its wall time and peak of Python allocations stay under the bounds."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = call()
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    assert peak < megabytes, f"peak of {peak:.1f} MiB"
    return result


# ---------------------------------------------------------------------------------------------
# Tags: never constructed, never executed


@pytest.mark.parametrize(
    "value, tag",
    [
        ("!!python/object/apply:os.system ['touch {marker}']", "tag:yaml.org,2002:python/object/apply:os.system"),
        ("!!python/object/new:builtins.open ['{marker}', 'w']", "tag:yaml.org,2002:python/object/new:builtins.open"),
        ("!!python/name:os.system ''", "tag:yaml.org,2002:python/name:os.system"),
        ("!!binary aGVsbG8=", "tag:yaml.org,2002:binary"),
        ("!!set {{a, b}}", "tag:yaml.org,2002:set"),
        ("!custom {{out: 3}}", "!custom"),
    ],
)
def test_unknown_tags_are_rejected_never_run(tmp_path: Path, value: str, tag: str) -> None:
    marker = tmp_path / "executed"
    text = f"input: {{channels: 3}}\nlayers:\n  - conv: {{out: {value.format(marker=marker)}}}\n"
    assert problems(text) == [f"spec.yaml:3:17: unsupported YAML tag {tag!r}: only plain mappings, lists and scalars"]
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Aliases, nesting, size


def billion_laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\ninput: {channels: 3}\nlayers: [*a9]\n"


def test_alias_bomb_is_rejected_fast_in_bounded_memory() -> None:
    text = billion_laughs()  # 10**10 nodes once expanded
    found = bounded(lambda: problems(text), seconds=5, megabytes=20)
    # a5 (line 6) is the first anchor over the limit: 111,111 < 250,000 < 1,111,111
    assert found == [f"spec.yaml:6:5: with its aliases expanded, this holds more than {MAX_NODES:,} YAML nodes"]


def test_alias_bomb_through_merge_keys() -> None:
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}"]
    lines += [f"m{i}: &m{i} [" + ", ".join([f"*m{i - 1}"] * 10) + "]" for i in range(1, 8)]
    text = "\n".join(lines) + "\ninput: {channels: 3, <<: *m7}\nlayers: [se]\n"
    found = bounded(lambda: problems(text), seconds=5, megabytes=20)
    assert found == [f"spec.yaml:6:5: with its aliases expanded, this holds more than {MAX_NODES:,} YAML nodes"]


@pytest.mark.parametrize("text", ["&a [*a]\n", "input: &a {channels: 3, more: *a}\nlayers: [se]\n", "&a {<<: *a}\n"])
def test_an_alias_inside_its_own_anchor_is_an_error(text: str) -> None:
    found = problems(text)
    assert len(found) == 1 and found[0].endswith("an alias refers to a node that contains it (a cycle)")
    assert found[0].startswith(("spec.yaml:1:1:", "spec.yaml:1:8:"))


def test_aliases_and_merge_keys_within_limits_work() -> None:
    text = (
        "input: {channels: 3, size: 16}\n"
        "layers:\n"
        "  - conv: &c {out: 16, kernel: 3}\n"
        "  - conv: {<<: *c, out: 8}\n"  # a key of its own overrides the merged one
        "  - conv: *c\n"
    )
    spec = netspec.loads(text, name="spec.yaml")
    assert [(layer.out, layer.kernel) for layer in spec.layers] == [(16, 3), (8, 3), (16, 3)]


@pytest.mark.parametrize(
    "text, location",
    [
        ("[" * 100_000 + "]" * 100_000, f"1:{MAX_DEPTH + 1}"),
        ("a:\n" + "".join("  " * depth + "b:\n" for depth in range(1, 500)), f"{MAX_DEPTH}:{2 * MAX_DEPTH - 1}"),
        ("- " * 50_000 + "x\n", f"1:{2 * MAX_DEPTH + 1}"),
    ],
    ids=["flow", "block mappings", "block sequences"],
)
@pytest.mark.parametrize("parser", ["libyaml", "python"])
def test_deep_nesting_is_a_located_error(text: str, location: str, parser: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if parser == "python":
        monkeypatch.setattr(source, "FAST_LOADER", source.PURE_LOADER)  # as on a PyYAML built without libyaml
    found = bounded(lambda: problems(text), seconds=10, megabytes=50)
    assert found == [f"spec.yaml:{location}: nesting deeper than {MAX_DEPTH} levels"]


def test_a_parser_limit_of_its_own_does_not_change_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """A libyaml that stops nesting earlier (0.2.5: 1,000 flow levels) or words its errors differently."""

    class Strict(source.FAST_LOADER):  # type: ignore[misc, valid-type, name-defined]
        def get_single_node(self) -> Any:
            raise yaml.parser.ParserError(None, None, "exceeded maximum nesting depth",
                                          yaml.error.Mark("<file>", 0, 0, 12, None, None))

    monkeypatch.setattr(source, "FAST_LOADER", Strict)
    assert problems("[" * 100 + "]" * 100) == [f"spec.yaml:1:{MAX_DEPTH + 1}: nesting deeper than {MAX_DEPTH} levels"]
    assert netspec.loads(VALID).input.channels == 3  # what the fast parser refused, the Python one reads


def test_too_many_nodes_is_a_located_error() -> None:
    text = "input: {channels: 3}\nlayers: [" + ", ".join(["se"] * 300_000) + "]\n"  # 1.2 MB, under MAX_BYTES
    found = bounded(lambda: problems(text), seconds=60, megabytes=400)
    column = len("layers: [") + 1 + 4 * (MAX_NODES - 7)  # the node past the limit (7 nodes before the first item)
    assert found == [f"spec.yaml:2:{column}: too many YAML nodes (over {MAX_NODES:,})"]


def test_a_file_over_the_size_limit_is_not_read_whole(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:
        handle.write(b"input: {channels: 3}\nlayers: [se]\n# ")
        handle.truncate(1 << 30)  # 1 GiB (sparse)
    with pytest.raises(netspec.SpecError) as caught:
        bounded(lambda: netspec.load(huge), seconds=5, megabytes=4 * MAX_BYTES / 2**20)
    assert str(caught.value) == f"{huge}:1:1: file too large: more than {MAX_BYTES:,} bytes"


# ---------------------------------------------------------------------------------------------
# Malformed text


def test_duplicate_keys() -> None:
    assert problems("input: {channels: 3}\nlayers: [se]\ninput: {channels: 4}\n") == [
        "spec.yaml:3:1: duplicate key 'input' (first defined at line 1)"
    ]
    assert problems("input: {channels: 3}\nlayers:\n  - conv: {out: 8,\n      out: 9}\n") == [
        "spec.yaml:4:7: duplicate key 'out' (first defined at line 3)"
    ]


def test_tabs_in_indentation() -> None:
    (found,) = problems("input:\n\tchannels: 3\nlayers: [se]\n")
    assert found == "spec.yaml:2:1: YAML syntax error: a tab character: YAML indents with spaces, never tabs"


def test_non_utf8_bytes() -> None:
    assert problems(b"input: {channels: 3}\nlayers: [se]\nname: caf\xe9\n") == [
        "spec.yaml:3:10: not UTF-8 text: invalid byte 0xe9"
    ]


@pytest.mark.parametrize("raw, location", [
    (b"input: {channels: 3}\nlayers: [se]\nname: \xc3\xa9\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xff\n", "3:11"),  # éé日😀 then 0xff
    (b"\xef\xbb\xbfname: \xe6\x97\xa5\xe9\ninput: {channels: 3}\nlayers: [se]\n", "1:8"),  # a BOM is no column
    (b"input: {channels: 3}\r\nlayers: [se]\r\nname: \xe2\x82\xac\xc3\n", "3:8"),  # a truncated sequence
])
def test_an_invalid_byte_is_located_in_characters_as_editors_count(raw: bytes, location: str) -> None:
    """The column of an invalid byte counts the characters before it on its line (as an editor shows it), not
    the bytes: the UTF-8 of é, 日 and 😀 is 2, 3 and 4 bytes but one column each."""
    (found,) = problems(raw)
    assert found.startswith(f"spec.yaml:{location}: not UTF-8 text: invalid byte 0x"), found


SURROGATE_PLACES = [
    "name: {s}\ninput: {{channels: 3}}\nlayers: [se]\n",
    "input: {{channels: 3}}\nlayers:\n  - {{se: {{}}, name: {s}}}\n",
    "input: {{channels: 3}}\nlayers:\n  - {{se: {{}}, from: {s}}}\n",
    "input: {{channels: 3}}\nlayers:\n  - {{conv: {{out: 3}}, name: a}}\n  - {{add: {{}}, from: [a, {s}]}}\n",
    "input: {{channels: 3}}\nlayers: [se]\noutputs: [{s}]\n",
    "input: {{channels: 3}}\nlayers:\n  - {{{s}: {{}}}}\n",
    "input: {{channels: 3}}\nlayers:\n  - {{conv: {{out: 3, act: {s}}}}}\n",
    "input: {{channels: 3, {s}: 1}}\nlayers: [se]\n",
    "{s}: 1\ninput: {{channels: 3}}\nlayers: [se]\n",
    "input: {{channels: 3}}  # {s}\nlayers: [se]\n",
]


@pytest.mark.parametrize("parser", ["libyaml", "python"])
@pytest.mark.parametrize("written", ["a\udcffb", '"a\\ud800b"', '"\\ud83d\\ude00"'], ids=["raw", "escaped", "pair"])
@pytest.mark.parametrize("place", SURROGATE_PLACES)
def test_a_lone_surrogate_anywhere_is_refused_at_load_and_located(place: str, written: str, parser: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A name (of the spec, an entry, a reference, a kind, a key) holding a lone surrogate could not be written back
    by ``to_yaml``: it is refused where it stands, by both parsers, however it was written."""
    if parser == "python":
        monkeypatch.setattr(source, "FAST_LOADER", source.PURE_LOADER)
    text = place.format(s=written)
    if "#" in place and "\\u" in written:  # an escape in a comment is plain text, not a character
        assert netspec.loads(netspec.loads(text).to_yaml()) == netspec.loads(text)
        return
    line = next(number for number, content in enumerate(text.split("\n"), 1) if written in content)
    with pytest.raises(netspec.SpecError) as error:
        netspec.loads(text, name="spec.yaml").to_yaml()
    (problem,) = error.value.problems
    assert problem.file == "spec.yaml" and problem.line == line, str(problem)
    assert "surrogate" in problem.message or "control character U+D" in problem.message, str(problem)


@pytest.mark.parametrize("char, column", [("\x00", 9), ("\x07", 9), ("\x1b", 9)])
def test_control_characters(char: str, column: int) -> None:
    assert problems(f"input: {{channels: 3}}\nlayers: [se]\nname: ab{char}c\n") == [
        f"spec.yaml:3:{column}: control character U+{ord(char):04X} is not allowed in YAML text"
    ]


def test_lone_surrogates_in_a_python_string() -> None:
    assert problems("input: {channels: 3}\nlayers: [se]\nname: a\udcffb\n") == [
        "spec.yaml:3:8: character U+DCFF is not valid Unicode text (a lone surrogate)"
    ]


def test_unicode_line_breaks_would_shift_every_location() -> None:
    assert problems("name: 'a\u2028b'\ninput: {channels: 3}\nlayers: [se]\n") == [
        "spec.yaml:1:9: character U+2028 (a Unicode line break) is not allowed: use a newline"
    ]


def test_windows_and_old_mac_line_endings_count_lines_as_editors_do() -> None:
    for newline in ("\r\n", "\r"):
        text = newline.join(["input: {channels: 3}", "layers:", "  - se: {reduction: 8}", ""])
        assert problems(text) == ["spec.yaml:3:21: layers[0].se.reduction: must be <= 3 (the input has 3 channels)"]


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "---\n", "null\n", "~", b"\xef\xbb\xbf"])
def test_empty_file(text: str | bytes) -> None:
    (found,) = problems(text)
    assert found.startswith(("spec.yaml:1:1: ", "spec.yaml:2:1: "))
    assert found.endswith(" the spec is empty: expected a mapping with 'input' and 'layers'")


@pytest.mark.parametrize("text", ["- conv: {out: 8}\n", "conv\n", "42\n", "[input, layers]\n"])
def test_top_level_not_a_mapping(text: str) -> None:
    assert problems(text) == ["spec.yaml:1:1: the top level must be a mapping with 'input' and 'layers'"]


def test_two_documents() -> None:
    (found,) = problems("input: {channels: 3}\nlayers: [se]\n---\ninput: {channels: 4}\n")
    assert found.startswith("spec.yaml:3:1: YAML syntax error: ") and "single document" in found


def test_unclosed_bracket_at_the_end_points_inside_the_file() -> None:
    (found,) = problems("input: {channels: 3}\nlayers: [se")
    assert found.startswith("spec.yaml:2:") and "YAML syntax error" in found
    line, column = found.split(":")[1:3]
    assert int(line) == 2 and int(column) <= len("layers: [se") + 1


# ---------------------------------------------------------------------------------------------
# Types: booleans and strings are not numbers


@pytest.mark.parametrize(
    "field, value, got",
    [
        ("out", "true", "True"),
        ("out", "yes", "True"),  # YAML 1.1 booleans
        ("out", "'64'", "'64'"),
        ("out", "64.0", "64.0"),
        ("kernel", "false", "False"),
    ],
)
def test_booleans_strings_and_floats_are_not_counts(field: str, value: str, got: str) -> None:
    text = f"input: {{channels: 3}}\nlayers:\n  - conv: {{out: 8, {field}: {value}}}\n"
    if field == "out":
        text = f"input: {{channels: 3}}\nlayers:\n  - conv: {{out: {value}}}\n"
    column = text.splitlines()[2].index(value) + 1
    assert problems(text) == [f"spec.yaml:3:{column}: layers[0].conv.{field}: input should be a valid integer (got {got})"]


@pytest.mark.parametrize("value, got", [("true", "True"), ("'0.5'", "'0.5'")])
def test_booleans_and_strings_are_not_probabilities(value: str, got: str) -> None:
    text = f"input: {{channels: 3}}\nlayers: [{{dropout: {{p: {value}}}}}]\n"
    assert problems(text) == [f"spec.yaml:2:24: layers[0].dropout.p: input should be a valid number (got {got})"]


def test_input_channels_must_be_a_number() -> None:
    assert problems("input: {channels: on}\nlayers: [se]\n") == [
        "spec.yaml:1:19: input.channels: input should be a valid integer (got True)"
    ]


# ---------------------------------------------------------------------------------------------
# The static budget


HUGE = "input: {channels: 3}\nlayers:\n  - conv: {out: 100000000}\n  - se\n"


@pytest.fixture
def no_modules_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if any kind builds a module: the budget must stop a spec before that."""
    from netspec.registry import KINDS

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a module was built for a spec over the budget")

    for cls in KINDS.values():
        monkeypatch.setattr(cls, "build", refuse)


def test_huge_channels_are_rejected_before_anything_is_allocated(no_modules_built: None) -> None:
    spec = netspec.loads(HUGE, name="spec.yaml")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for call in (netspec.build, netspec.check):
        with pytest.raises(netspec.SpecError) as caught:
            bounded(lambda: call(spec), seconds=5, megabytes=5)
        assert str(caught.value) == (
            f"spec.yaml:3:5: layers[0].conv: the network reaches 2,900,000,000 parameters here, over the limit of "
            f"{DEFAULT_MAX_PARAMS:,} (max_params; --max-params on the command line)"
        )
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 200 * 1024  # KiB: no 11 GB of weights


def test_the_budget_points_at_the_layer_that_crosses_it() -> None:
    text = "input: {channels: 3}\nlayers:\n  - conv: {out: 64}\n  - avgpool\n  - linear: {out: 1000}\n"
    spec = netspec.loads(text, name="spec.yaml")
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(spec, max_params=10_000)
    assert str(caught.value).startswith("spec.yaml:5:5: layers[2].linear: the network reaches 66,856 parameters here")
    assert netspec.check(spec, max_params=66_856).params == 66_856


def test_activations_over_the_limit() -> None:
    text = "input: {channels: 3, size: [4000, 3000]}\nlayers:\n  - conv: {out: 256}\n"
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.loads(text, name="spec.yaml"))
    assert str(caught.value) == (
        "spec.yaml:3:5: layers[0].conv: this layer outputs 3,072,000,000 values per sample (N, 256, 4000, 3000), "
        f"over the limit of {DEFAULT_MAX_ACTIVATIONS:,} (max_activations; --max-activations on the command line)"
    )
    assert netspec.check(netspec.loads(text), max_activations=None).params == 7424


def test_the_summary_alone_has_no_limit_and_costs_nothing() -> None:
    summary = bounded(lambda: netspec.summary(netspec.loads(HUGE)), seconds=5, megabytes=5)
    assert summary.params == 2_900_000_000 + 2 * 100_000_000 * (100_000_000 // 16) + 100_000_000 // 16 + 100_000_000


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_cli_budget_flags(tmp_path: Path, no_modules_built: None) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(HUGE)
    for command in ("build", "check"):
        status, _, err = run_cli(command, str(path))
        assert status == 1
        assert err.startswith(f"{path}:3:5: layers[0].conv: the network reaches 2,900,000,000 parameters here")
    status, out, _ = run_cli("check", str(path), "--max-params", "2e18", "--max-activations", "none")
    assert status == 0 and "ok" in out
    with pytest.raises(SystemExit) as usage:
        run_cli("check", str(path), "--max-params", "lots")
    assert usage.value.code == 2


# ---------------------------------------------------------------------------------------------
# Output files: a temporary name, then a rename


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(".netspec-"))


def test_an_invalid_spec_never_touches_the_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {channels: 3}\nlayers: [{conv: {out: 0}}]\n")
    output = tmp_path / "model.pt"
    output.write_bytes(b"a good model")
    status, _, err = run_cli("build", str(bad), "-o", str(output))
    assert status == 1 and err.startswith(f"{bad}:2:23: layers[0].conv.out:")
    assert output.read_bytes() == b"a good model" and leftovers(tmp_path) == []


def test_a_spec_over_budget_never_touches_the_output(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text(HUGE)
    output = tmp_path / "model.pt"
    output.write_bytes(b"a good model")
    status, _, _ = run_cli("build", str(huge), "-o", str(output))
    assert status == 1
    assert output.read_bytes() == b"a good model" and leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt(), RuntimeError("exporter bug")])
def test_a_writer_failing_midway_leaves_no_partial_file(tmp_path: Path, error: BaseException) -> None:
    output = tmp_path / "model.pt"
    output.write_bytes(b"a good model")

    def write(path: str) -> None:
        with open(path, "wb") as handle:
            handle.write(b"half a mod")
        raise error

    with pytest.raises(type(error)):
        write_atomic(str(output), write)
    assert output.read_bytes() == b"a good model" and leftovers(tmp_path) == []
    fresh = tmp_path / "fresh.pt"
    with pytest.raises(type(error)):
        write_atomic(str(fresh), write)
    assert not fresh.exists() and leftovers(tmp_path) == []


def test_a_successful_build_replaces_the_output(tmp_path: Path) -> None:
    import torch

    spec = tmp_path / "spec.yaml"
    spec.write_text(VALID)
    output = tmp_path / "model.pt"
    output.write_bytes(b"an old model")
    status, _, err = run_cli("build", str(spec), "-o", str(output))
    assert status == 0, err
    state = torch.load(output, weights_only=True)["state_dict"]
    netspec.build(str(spec)).load_state_dict(state)
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Issue 10, section 3: each class of input that used to hang, crash, lose a file, pass but fail, or print wrong.


def _conv_with(value: str) -> str:
    return f"input: {{channels: 3, size: 8}}\nlayers:\n  - conv: {{out: {value}}}\n"


@pytest.mark.parametrize(
    "value",
    [
        "1" + ":0" * 1_000_000,  # sexagesimal: PyYAML's conversion is quadratic in the parts
        "1" + ":59" * 300_000 + ".5",  # a sexagesimal float
        "9" * 1_000_000,
        "0x" + "f" * 1_000_000,
        "0b" + "1" * 1_000_000,
        "0" + "7" * 1_000_000,  # YAML 1.1 octal
        "1" + "_0" * 1_000_000,
        "1." + "5" * 1_000_000,
    ],
    ids=["sexagesimal int", "sexagesimal float", "decimal", "hex", "binary", "octal", "underscores", "float"],
)
def test_numbers_of_any_form_and_length_are_bounded_work(value: str) -> None:
    found = bounded(lambda: problems(_conv_with(value)), seconds=10, megabytes=200)
    assert len(found) == 1 and found[0].startswith("spec.yaml:3:17: number too long: "), found


@pytest.mark.parametrize(
    "where",
    ["input: {{channels: {n}}}\nlayers: [se]\n", "input: {{channels: 3, size: [{n}, 8]}}\nlayers: [se]\n",
     "input: {{channels: 3}}\nlayers: [{{conv: {{{n}: 8}}}}]\n", "input: {{channels: 3}}\n{n}: 1\nlayers: [se]\n"],
    ids=["value", "size", "key", "top-level key"],
)
@pytest.mark.parametrize("number", ["9" * 5000, "0x" + "f" * 4000, "0b" + "1" * 15000, "-" + "9" * 4400])
def test_integers_past_pythons_conversion_limit_anywhere(where: str, number: str) -> None:
    (found,) = problems(where.format(n=number))
    assert "number too long" in found or "YAML syntax error" in found  # a plain key past 1024 characters: syntax


@pytest.mark.parametrize(
    "value, message",
    [
        ("!!bool maybe", "!!bool 'maybe' is not a boolean: write true or false"),
        ("!!bool ''", "!!bool '' is not a boolean: write true or false"),
        ("!!int ''", "!!int '' is not an integer"),
        ("!!int 1.5", "!!int '1.5' is not an integer"),
        ("!!int 0x", "!!int '0x' is not an integer"),
        ("!!int 1:x", "!!int '1:x' is not an integer"),
        ("!!float ''", "!!float '' is not a number"),
        ("!!float abc", "!!float 'abc' is not a number"),
        ("!!float 1e400", "!!float '1e400' is not a number"),
        ("!!null x", "!!null 'x' is not null: write null, ~ or nothing"),
    ],
)
def test_explicit_tags_with_empty_or_invalid_values(value: str, message: str) -> None:
    assert problems(_conv_with(value)) == [f"spec.yaml:3:17: {message}"]


def test_explicit_tags_with_valid_values_still_work() -> None:
    text = "input: {channels: !!int '3', size: !!int 0x10}\nlayers:\n  - dropout: {p: !!float '0.5'}\n"
    spec = netspec.loads(text)
    assert spec.input.channels == 3 and spec.input.size == (16, 16) and spec.layers[0].p == 0.5
    assert netspec.loads("input: {channels: 1:00}\nlayers: [se]\n").input.channels == 60  # YAML 1.1 sexagesimal


def _bounded_int_fields(model: type) -> list[str]:
    """Names of ``model``'s integer fields that have no upper bound (``le``/``lt``)."""
    import typing

    import annotated_types

    unbounded = []
    fields = model.param_fields() if hasattr(model, "param_fields") else model.model_fields  # not the wiring names
    for name, info in fields.items():
        types = {info.annotation, *typing.get_args(info.annotation)}
        if int not in types and not any(getattr(t, "__origin__", None) is tuple for t in types):
            continue
        metadata = list(info.metadata)
        for t in types:
            for arg in typing.get_args(t):
                metadata += list(getattr(arg, "__metadata__", ()))
                for inner in typing.get_args(arg):
                    metadata += list(getattr(inner, "__metadata__", ()))
            metadata += list(getattr(t, "__metadata__", ()))
        limits = [m for m in metadata if isinstance(m, (annotated_types.Le, annotated_types.Lt))]
        limits += [m for m in metadata for sub in getattr(m, "metadata", ()) if isinstance(sub, (annotated_types.Le,
                                                                                                 annotated_types.Lt))]
        if not limits:
            unbounded.append(f"{model.__name__}.{name}")
    return unbounded


def test_every_count_like_param_has_a_bound() -> None:
    from netspec.registry import KINDS
    from netspec.scaling import Scale
    from netspec.spec import Input

    unbounded = [name for model in [Input, Scale, *KINDS.values()] for name in _bounded_int_fields(model)]
    assert unbounded == []


def test_values_past_every_bound_are_located_errors() -> None:
    assert problems(_conv_with(f"8, stride: {2**31}")) == [
        "spec.yaml:3:28: layers[0].conv.stride: input should be less than or equal to 2147483647 (got 2147483648)"
    ]
    assert problems(_conv_with(f"8, dilation: {2**63}"))[0].startswith("spec.yaml:3:30: layers[0].conv.dilation: ")
    (found,) = problems("input: {channels: 64, size: 8}\nlayers:\n  - sk: {branches: 1000000}\n")
    assert found == "spec.yaml:3:20: layers[0].sk.branches: input should be less than or equal to 16 (got 1000000)"


def test_an_input_alone_over_the_activation_budget() -> None:
    (found,) = problems("input: {channels: 3, size: 100000}\nlayers:\n  - conv: {out: 8}\n")
    assert found == ("spec.yaml:1:8: input: the input alone holds 30,000,000,000 values per sample "
                     "(N, 3, 100000, 100000), over the limit of 2,147,483,647 (max_activations)")


@pytest.mark.parametrize("field", ["width", "depth"])
def test_float_overflow_in_scaling(field: str, tmp_path: Path) -> None:
    text = f"input: {{channels: 3, size: 8}}\nscale: {{{field}: 1.0e+308}}\nlayers:\n  - stage: {{block: basic, out: 8, depth: 3}}\n"
    column = text.splitlines()[1].index("1.0e") + 1
    assert problems(text) == [f"spec.yaml:2:{column}: scale.{field}: input should be less than or equal to 1000 (got 1e+308)"]
    spec = tmp_path / "net.yaml"
    spec.write_text(VALID)
    with pytest.raises(SystemExit) as usage, redirect_stderr(io.StringIO()):
        main(["check", str(spec), f"--{field}", "1e308"])
    assert usage.value.code == 2
    with pytest.raises(netspec.SpecError, match=f"scale.{field}: input should be less than or equal to 1000"):
        netspec.loads(VALID).with_scale(**{field: 1e308})


def test_enormous_counts_in_the_summary_and_the_drawing() -> None:
    from netspec.drawing import to_dot, to_mermaid
    from netspec.summary import format_count, format_int

    text = f"input: {{channels: {2**31 - 1}, size: {2**31 - 1}}}\nlayers:\n" + f"  - conv: {{out: {2**31 - 1}, kernel: 7}}\n" * 3
    summary = netspec.summary(netspec.loads(text))
    assert "e+" in str(summary) and "e+" in to_dot(summary) and "e+" in to_mermaid(summary)
    assert summary.to_dict()["params"] == summary.params
    assert format_int(10**5000) == "1.00e+5000" and format_count(10**400) == "1.00e+400"
    assert format_int(123_456_789_012_345_678_901) == "1.23e+20" and format_int(999_999) == "999,999"


def test_check_lists_every_file_even_if_the_checker_crashes_on_one(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    paths = []
    for name, text in (("a.yaml", VALID), ("b.yaml", VALID.replace("size: 32", "size: 31")),
                       ("c.yaml", VALID.replace("reduction: 4", "reduction: 64"))):
        paths.append(tmp_path / name)
        paths[-1].write_text(text)
    real = netspec.check

    def crashes_on_b(spec: Any, **kwargs: Any) -> Any:
        if spec.input.size == (31, 31):
            raise RuntimeError("an internal bug\nwith a second line")
        return real(spec, **kwargs)

    monkeypatch.setattr(netspec, "check", crashes_on_b)
    status, out, err = run_cli("check", *map(str, paths))
    assert status == 1
    assert out == f"{paths[0]}: ok (2 layers, output (N, 16, 32, 32), 612 params)\n"
    assert err.splitlines() == [
        f"{paths[1]}: netspec failed on this file: RuntimeError: an internal bug (please report it)",
        f"{paths[2]}:4:21: layers[1].se.reduction: must be <= 16 (the input has 16 channels)",
    ]


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_files_that_block_or_are_not_files_are_refused(kind: str, tmp_path: Path) -> None:
    import threading

    path = {"fifo": tmp_path / "pipe.yaml", "device": Path("/dev/zero"), "directory": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes: open() would block forever
    result: list[BaseException | object] = []
    reader = threading.Thread(target=lambda: result.append(_load_error(path)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert result, "netspec.load blocked"
    what = {"fifo": "a pipe", "device": "a device or socket", "directory": "a directory"}[kind]
    assert result[0] == f"{path}: cannot read the spec: {what}, not a regular file"


def _load_error(path: Path) -> str:
    try:
        netspec.load(path)
    except netspec.SpecError as error:
        return str(error)
    return "loaded"


@pytest.mark.parametrize("command", ["build", "graph"])
@pytest.mark.parametrize("how", ["same path", "another spelling", "a symlink"])
def test_output_naming_the_spec_itself_is_refused(command: str, how: str, tmp_path: Path) -> None:
    spec = tmp_path / ("net.dot" if command == "graph" else "net.pt")
    spec.write_text(VALID)  # a spec may have any extension
    output = {"same path": str(spec), "another spelling": f"{tmp_path}/./{spec.name}", "a symlink": str(tmp_path / "link" / spec.name)}[how]
    if how == "a symlink":
        (tmp_path / "link").symlink_to(tmp_path)
    status, _, err = run_cli(command, str(spec), "-o", output)
    assert status == 1 and err == f"{output}: this is the spec itself; choose another output file\n"
    assert spec.read_text() == VALID and leftovers(tmp_path) == []


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP"])
def test_a_signal_while_writing_leaves_no_temporary_file(signal_name: str, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    output = tmp_path / "model.pt"
    output.write_bytes(b"a good model")
    code = (
        "import os, signal, time\n"
        "from netspec.files import write_atomic\n"
        "def write(path):\n"
        "    with open(path, 'wb') as handle:\n"
        "        handle.write(b'half a mod')\n"
        f"    os.kill(os.getpid(), signal.{signal_name})\n"
        "    time.sleep(30)\n"
        f"write_atomic({str(output)!r}, write)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 128 + getattr(signal, signal_name), result.stderr
    assert "Traceback" not in result.stderr
    assert output.read_bytes() == b"a good model" and leftovers(tmp_path) == []


def test_a_pickled_spec_error_keeps_its_problems() -> None:
    import pickle

    with pytest.raises(netspec.SpecError) as caught:
        netspec.loads("input: {channels: 3}\nlayers: [see, {conv: {out: 0}}]\n", name="spec.yaml")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is netspec.SpecError and str(copy) == str(caught.value)
    assert copy.problems == caught.value.problems and len(str(copy).splitlines()) == 2


CONTROL = 'name: "evil\\e[31m\\nred\\u0007"\ninput: {channels: 3, size: 8}\nlayers:\n  - conv: {out: 8, "x\\e[2J\\ny": 1}\n'


def test_control_characters_from_a_spec_are_escaped_in_messages_and_drawings(tmp_path: Path) -> None:
    from netspec.drawing import to_dot, to_mermaid

    (found,) = problems(CONTROL)
    assert found.startswith("spec.yaml:4:20: layers[0].conv.'x\\x1b[2J\\ny': unknown field 'x\\x1b[2J\\ny'")
    spec = netspec.loads(CONTROL.replace(', "x\\e[2J\\ny": 1', ""))
    for text in (str(netspec.summary(spec)), to_dot(netspec.summary(spec)), to_mermaid(netspec.summary(spec))):
        assert "\x1b" not in text and "\x07" not in text and "evil\\x1b[31m\\nred\\x07" in text.replace("\\\\", "\\")
    for name in ("spec\nwith a newline.yaml", "spec\x1b[2J.yaml"):
        path = tmp_path / name
        path.write_text("input: {channels: 3}\nlayers: [{conv: {out: 0}}]\n")
        status, _, err = run_cli("check", str(path))
        assert status == 1 and len(err.splitlines()) == 1 and "\x1b" not in err
        assert err.startswith(str(path).encode("unicode_escape").decode().replace("\\\\", "\\")[:10])


def test_a_lone_surrogate_in_a_name_never_reaches_to_yaml() -> None:
    (found,) = problems('name: "a\\ud800b"\ninput: {channels: 3}\nlayers: [se]\n')
    assert found == "spec.yaml:1:7: character U+D800 is not valid Unicode text (a lone surrogate)"
    with pytest.raises(ValueError, match="lone surrogate"):
        netspec.Spec(name="a\udcffb", input=netspec.Input(channels=3), layers=[netspec.layers.SE()])
    spec = netspec.Spec(name="café ☕", input=netspec.Input(channels=3), layers=[netspec.layers.SE(reduction=1)])
    assert netspec.loads(spec.to_yaml()) == spec


@pytest.mark.parametrize(
    "text, location",
    [
        ("input: {channels: 3}\nlayers: [se]\n1.5: 3\n", "3:1: 1.5"),
        ("input: {channels: 3}\nlayers: [se]\n.nan: 3\n", "3:1: nan"),
        ("input: {channels: 3}\nlayers:\n  - conv: {out: 8, 2.5: 3}\n", "3:20: layers[0].conv.2.5"),
        ("input: {channels: 3}\nlayers:\n  - conv: {out: 8, true: 3}\n", "3:20: layers[0].conv.True"),
    ],
)
def test_float_and_boolean_keys_are_located_where_they_are(text: str, location: str) -> None:
    (found,) = problems(text)
    assert found.startswith(f"spec.yaml:{location}: a field name must be text, got ")


@pytest.mark.parametrize("parser", ["libyaml", "python"])
@pytest.mark.parametrize("before", ["", "é", "😀", "日本"])
def test_columns_count_characters_as_an_editor_does(before: str, parser: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if parser == "python":
        monkeypatch.setattr(source, "FAST_LOADER", source.PURE_LOADER)
    prefix = f"{{name: '{before}', input: {{channels: 3}}, layers: [{{conv: {{out: 8, "
    column = len(prefix) + 1
    assert problems(f"{prefix}outt: 8}}}}]}}\n") == [
        f"spec.yaml:1:{column}: layers[0].conv.outt: unknown field 'outt' (did you mean 'out'?); known: out, kernel, "
        "stride, padding, dilation, groups, bias, norm, act, widen_only"
    ]
    (syntax,) = problems(f"{prefix}: : 8}}}}]}}\n")
    assert syntax.startswith(f"spec.yaml:1:{column}: YAML syntax error")
    (control,) = problems(f"{prefix}\x07}}}}]}}\n")
    assert control == f"spec.yaml:1:{column}: control character U+0007 is not allowed in YAML text"


def test_a_network_too_costly_to_build_is_stopped_before_building(no_modules_built: None) -> None:
    """Cheap to check, slow to build: thousands of blocks of one channel (few parameters, nothing over budget)."""
    from netspec.compiler import DEFAULT_MAX_MODULES

    text = "input: {channels: 1, size: 8}\nlayers:\n" + "  - stage: {block: plain, out: 1, depth: 1024}\n" * 200
    spec = netspec.loads(text, name="spec.yaml")
    with pytest.raises(netspec.SpecError) as caught:
        bounded(lambda: netspec.build(spec), seconds=10, megabytes=50)
    (problem,) = caught.value.problems
    assert problem.message.startswith("building the network takes about ")
    assert problem.message.endswith(f"torch modules here, over the limit of {DEFAULT_MAX_MODULES:,} (max_modules)")
    assert problem.path[0] == "layers" and 50 < problem.path[1] < 200
    assert netspec.summary(spec).params > 0  # the summary builds nothing: no limit


def test_an_unwritable_output_with_a_newline_in_its_name_is_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text(VALID)
    status, _, err = run_cli("graph", str(spec), "-o", str(tmp_path / "no\nsuch" / "net.dot"))
    assert status == 1 and len(err.splitlines()) == 1 and "no\\nsuch" in err
