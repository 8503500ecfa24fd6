"""Robustness: a valid spec mutated at random gives a valid spec and model, or a located SpecError; never a crash.

The mutations act on the YAML data of a random valid spec (a field deleted, a value replaced by a wrong
type, a huge or negative number, NaN, inf, a string, a list, a new key, a kind renamed, an entry
duplicated) and, separately, on its text (characters inserted, deleted or replaced). Every outcome must
be a :class:`netspec.SpecError` whose every problem has a line and column inside the file, or a spec
that checks, builds and whose model matches its static shapes.
"""
from __future__ import annotations

import io
import math
import re
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import currently_in_test_context, event, given, settings
from hypothesis import strategies as st

import netspec
from netspec import strategies as nst
from netspec.cli import main
from netspec.compiler import analyse
from netspec.errors import SpecWarning
from netspec.registry import KINDS
from netspec.spec import Spec

from entry_outputs import assert_static_matches_runtime

FILE = "mutated.yaml"
# Small limits keep the examples fast; crossing them is one of the outcomes under test.
MAX_PARAMS = 2_000_000
MAX_ACTIVATIONS = 200_000
RUNTIME_PIXELS = 64 * 64  # run the model only when every map is at most this big (attention is O(pixels^2))

SPEC_FIELDS = {"name", "input", "defaults", "scale", "layers", "size", "channels", "norm", "act", "width", "depth", "max_channels",
               "outputs", "from", "eps", "momentum"}
FIELD_NAMES = sorted({name for cls in KINDS.values() for name in cls.model_fields} | SPEC_FIELDS)
WIRING = ("name", "from")

ODD_NUMBERS = [0, -1, -7, 1, 2, 3, 2**31, 2**31 - 1, 2**63, -(2**63), 10**12, 10**100, 10**400, -(10**400), 100_000_000]
ODD_FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.5, 0.5, 1.5, 1e308, 3.0]

wrong_values: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(ODD_NUMBERS),
    st.sampled_from(ODD_FLOATS),
    st.integers(-(10**30), 10**30),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(sorted(KINDS) + ["batch", "relu", "none", "true", "64", "1e9", ".nan"]),
    st.lists(st.one_of(st.integers(-3, 40), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.sampled_from(FIELD_NAMES), st.integers(-3, 40), max_size=2),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``data`` (dict keys and list indices), the root excluded."""
    found = []
    if isinstance(data, dict):
        items = list(data.items())
    elif isinstance(data, list):
        items = list(enumerate(data))
    else:
        return []
    for key, value in items:
        found.append(prefix + (key,))
        found += _paths(value, prefix + (key,))
    return found


def _containers(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if isinstance(data, (dict, list)) else []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        paths += _containers(value, prefix + (key,))
    return paths


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def mutation(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with one random mutation applied (in place)."""
    how = draw(st.sampled_from(["delete", "replace", "replace", "add key", "rename kind", "duplicate", "rewire", "rewire"]))
    event(f"mutation: {how}")
    if how == "rewire":
        return draw(rewiring(data))
    if how in ("delete", "replace", "duplicate"):
        path = draw(st.sampled_from(_paths(data)))
        parent = _get(data, path[:-1])
        if how == "delete":
            del parent[path[-1]]
        elif how == "replace":
            parent[path[-1]] = draw(wrong_values)
        elif isinstance(parent, list):
            parent.insert(path[-1], parent[path[-1]])
        else:
            parent[path[-1]] = [parent[path[-1]], parent[path[-1]]]
        return data
    if how == "add key":
        dicts = [path for path in _containers(data) if isinstance(_get(data, path), dict)]
        target = _get(data, draw(st.sampled_from(dicts)))
        key = draw(st.one_of(st.sampled_from(FIELD_NAMES + sorted(KINDS)), st.text(max_size=6), st.integers(-2, 2)))
        target[key] = draw(wrong_values)
        return data
    # rename a kind: a layer entry's key (or bare name), or a nested entry's (a stage's attention/conv)
    entries = [path for path in _paths(data) if len(path) >= 2 and path[0] == "layers" and isinstance(path[-1], int)]
    entries += [path for path in _paths(data) if path[-1:] in (("attention",), ("conv",))]
    if not entries:
        return data
    path = draw(st.sampled_from(entries))
    parent = _get(data, path[:-1])
    entry = parent[path[-1]]
    new_kind = draw(st.one_of(st.sampled_from(sorted(KINDS)), st.text(min_size=1, max_size=6)))
    if isinstance(entry, dict) and len(entry) == 1:
        parent[path[-1]] = {new_kind: next(iter(entry.values()))}
    else:
        parent[path[-1]] = new_kind
    return data


def entry_names(data: dict[str, Any]) -> list[str]:
    """Each entry's name as the compiler gives it: its ``name:``, else the kind and its running count."""
    counts: dict[str, int] = {}
    names = []
    for entry in data.get("layers", []):
        kind = entry if isinstance(entry, str) else next((key for key in entry if key not in WIRING), "?") \
            if isinstance(entry, dict) else "?"
        counts[kind] = counts.get(kind, 0) + 1
        name = entry.get("name") if isinstance(entry, dict) else None
        names.append(name if isinstance(name, str) else f"{kind}{counts[kind]}")
    return names


@st.composite
def rewiring(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with one entry's ``name``/``from`` or the ``outputs`` rewritten (in place): to another entry, a later
    one, itself, ``input``, a typo, a reserved or keyword name, a duplicate, a list, a list on a one-input kind, junk."""
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        return data
    names = entry_names(data)
    index = draw(st.integers(0, len(layers) - 1))
    own = names[index]
    name_values = st.one_of(
        st.sampled_from(["input", own, *names]),  # itself, a later entry, a duplicate name
        st.sampled_from(names).map(lambda name: name[:-1] + "x"),  # a typo: did you mean
        st.sampled_from(["forward", "else", "_hidden", "state_dict", "Conv", "1x", "a-b", ""]),
        st.lists(st.sampled_from(["input", *names]), max_size=4),
        wrong_values,
    )
    where = draw(st.sampled_from(["name", "from", "from", "outputs"]))
    event(f"rewire: {where}")
    if where == "outputs":
        outputs = data.get("outputs")
        if isinstance(outputs, list) and outputs and draw(st.booleans()):
            position = draw(st.integers(0, len(outputs) - 1))
            if draw(st.booleans()):
                outputs[position] = draw(name_values)
            else:
                del outputs[position]  # may leave an entry unused, or `outputs: []`
        else:
            data["outputs"] = draw(st.one_of(name_values, st.lists(st.sampled_from(["input", *names]), max_size=3)))
        return data
    entry = layers[index]
    if isinstance(entry, str):
        entry = layers[index] = {entry: {}}
    if isinstance(entry, dict):
        entry[where] = draw(name_values)
    return data


@st.composite
def mutated_yaml(draw: st.DrawFn) -> str:
    spec = draw(st.one_of(nst.specs(max_layers=3), nst.graph_specs(max_steps=4)))
    data = spec.to_data()
    if draw(st.integers(0, 4)) == 0:  # a `scale` to mutate too (the strategies draw none: it moves channels)
        multipliers = st.sampled_from([0.25, 0.5, 1.0, 1.5])
        data["scale"] = {"width": draw(multipliers), "depth": draw(multipliers)}
    for _ in range(draw(st.integers(1, 3))):
        data = draw(mutation(data))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=80)


def note(outcome: str) -> None:
    if currently_in_test_context():
        event(outcome)


def assert_located(error: netspec.SpecError, text: str) -> None:
    """Every problem names the file and a line and column inside it."""
    lines = re.split(r"\r\n|\r|\n", text)  # universal newlines, as editors count lines
    assert error.problems, "a SpecError without problems"
    for problem in error.problems:
        assert problem.file == FILE, problem
        assert problem.line is not None and problem.column is not None, f"no location: {problem}"
        assert 1 <= problem.line <= len(lines), f"line outside the file: {problem}"
        assert 1 <= problem.column <= len(lines[problem.line - 1]) + 1, f"column outside line {problem.line}: {problem}"
        assert "internal error" not in problem.message, problem


def outcome(text: str) -> Spec | None:
    """Load, check and build ``text``; a SpecError must be located. Returns the spec when it is valid.

    A valid graph may leave an entry unused: that is a :class:`~netspec.errors.SpecWarning`, located too."""
    try:
        spec = netspec.loads(text, name=FILE)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SpecWarning)
            model = netspec.build(spec, max_params=MAX_PARAMS, max_activations=MAX_ACTIVATIONS)
    except netspec.SpecError as error:
        assert_located(error, text)
        note("outcome: located SpecError")
        return None
    note("outcome: valid spec and model")
    for warning in caught:
        assert isinstance(warning.message, SpecWarning), warning.message
        assert_located(netspec.SpecError([warning.message.problem]), text)
        note("outcome: valid, with an unused entry warned about")
    rows = analyse(spec)
    assert sum(row.info.params for row in rows) == sum(p.numel() for p in model.parameters())
    sizes = [row.info.shape.pixels for row in rows] + [rows[0].input.pixels]
    if spec.input.size is not None and all(size is not None and size <= RUNTIME_PIXELS for size in sizes):
        assert_static_matches_runtime(spec, model)
    return spec


@given(mutated_yaml())
def test_mutated_spec_gives_a_model_or_a_located_error(text: str) -> None:
    outcome(text)


@st.composite
def text_edits(draw: st.DrawFn) -> str:
    text = draw(st.one_of(nst.specs(max_layers=3), nst.graph_specs(max_steps=4))).to_yaml()
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(text)))
        insert = draw(st.one_of(st.sampled_from(list(":-{}[],&*!|>'\"#%@`\t\n ?") + ["  ", "\n  ", "<<: ", "&a ", "*a"]),
                                st.text(st.characters(exclude_categories=()), max_size=3)))  # surrogates too
        cut = draw(st.integers(0, 3))
        text = text[:where] + insert + text[where + cut:]
    return text


@given(text_edits())
def test_edited_text_gives_a_spec_or_a_located_error(text: str) -> None:
    try:
        netspec.check(netspec.loads(text, name=FILE), max_params=MAX_PARAMS, max_activations=MAX_ACTIVATIONS)
    except netspec.SpecError as error:
        assert_located(error, text)


@settings(max_examples=10)
@given(mutated_yaml())
def test_cli_check_reports_every_problem_on_one_line(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("cli") / FILE
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(["check", str(path), "--max-params", str(MAX_PARAMS)])
    assert status in (0, 1)
    if status:
        lines = err.getvalue().splitlines()
        assert lines and all(line.startswith(f"{path}:") for line in lines), err.getvalue()
        assert "Traceback" not in err.getvalue()


# ---------------------------------------------------------------------------------------------
# Crashes the robustness property found, kept as plain regression tests


@pytest.mark.parametrize(
    "layers",
    [
        "[{stage: {out: 8, depth: 100000000000}}]",  # the shape rule looped over every block
        "[{stage: {out: 1, block: plain, depth: 50000000}}]",  # under max_params, but 50 million modules
        "[{conv: {out: 8, kernel: 100000000000000000000}}]",  # beyond int64 for torch
        "[{conv: {out: 8, norm: instance}}]",  # instance norm on a 1x1 map failed at runtime
        "[{nonlocal: {norm: instance}}]",
        "[{stage: {out: 8, norm: instance}}]",
    ],
)
def test_regressions(layers: str) -> None:
    text = f"input: {{channels: 8, size: 1}}\nlayers: {layers}\n"
    assert outcome(text) is None


@pytest.mark.parametrize("field", ["width", "depth"])
def test_scaling_a_huge_count_is_an_error_not_an_overflow(field: str) -> None:
    huge = 10**400  # int * float raised OverflowError in scale.apply
    text = f"input: {{channels: 3}}\nscale: {{{field}: 0.5}}\nlayers: [{{stage: {{out: {huge}, depth: {huge}}}}}]\n"
    assert outcome(text) is None


@pytest.mark.parametrize("key, shown", [('"\\x1e"', "'\\x1e'"), ('"a\\nb"', "'a\\nb'"), ("''", "''")])
def test_odd_keys_stay_on_one_line(tmp_path: Path, key: str, shown: str) -> None:
    path = tmp_path / FILE
    path.write_text(f"input: {{channels: 1}}\nlayers:\n- {key}\n- conv: {{out: 1, {key}: 1}}\n")
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert main(["check", str(path)]) == 1
    lines = err.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{path}:3:3: layers[0].{shown}: unknown kind ")
    assert lines[1].startswith(f"{path}:4:18: layers[1].conv.{shown}: unknown field ")


def test_a_valid_mutation_still_builds(tmp_path: Path) -> None:
    assert outcome("input: {channels: 3, size: [5, 7]}\nlayers: [{conv: {out: 16, stride: 2}}, se, avgpool]\n") is not None
