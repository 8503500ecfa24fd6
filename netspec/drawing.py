"""Draw a spec: one box per entry with its params, output shape, parameters and MACs (from the static summary),
and an arrow from each entry it reads (branches and merges of graph specs as they are).

``to_dot`` gives Graphviz DOT, ``to_mermaid`` a Mermaid flowchart (renders in GitHub Markdown), and
:func:`write` picks the format from the file extension: ``.dot``/``.gv``, ``.mmd``, or ``.svg``, which
runs Graphviz's ``dot`` (it must be on ``PATH``). Nothing here imports torch.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from netspec.files import write_atomic
from netspec.errors import printable
from netspec.summary import Summary, format_count, format_int

FORMATS: dict[str, str] = {".svg": "SVG", ".dot": "Graphviz DOT", ".gv": "Graphviz DOT", ".mmd": "Mermaid"}

INSTALL_GRAPHVIZ = "install Graphviz (apt install graphviz, brew install graphviz, conda install graphviz)"


class GraphError(Exception):
    """The drawing cannot be made here (no Graphviz ``dot``, or ``dot`` failed); the message is one line."""


def output_format(path: str | os.PathLike[str]) -> str | None:
    """The extension of ``path`` if :func:`write` can draw it, else ``None``."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    return extension if extension in FORMATS else None


def describe_formats() -> str:
    return ".svg (needs Graphviz), .dot or .gv (Graphviz DOT), .mmd (Mermaid)"


def _params_text(entry: Any) -> str:
    """``{kind: {params}}`` or ``kind`` as short ``name=value`` text (nested entries by their kind)."""
    if isinstance(entry, str) or not isinstance(entry, dict):
        return ""
    params = next(iter(entry.values())) or {}  # the kind's params (`name`/`from` beside it are drawn as edges)
    parts = []
    for name, value in params.items():
        if isinstance(value, dict) and len(value) == 1:
            nested = next(iter(value))
            inner = _params_text(value)
            value = f"{nested}({inner})" if inner else nested
        elif isinstance(value, list):
            value = "x".join(str(item) for item in value)
        parts.append(f"{name}={value}")
    return ", ".join(parts)


def node_lines(summary: Summary) -> list[tuple[str, list[str], str]]:
    """``(node id, label lines, role)`` for the input and every layer, in order (ids ``n0``, ``n1``, ...)."""
    nodes = [("n0", ["input", str(summary.input)], "input")]
    for index, row in enumerate(summary.rows, start=1):
        params = _params_text(row.layer.to_entry())
        lines = [f"{row.name}: {row.kind}"]
        if params:
            lines.append(params)
        lines.append(str(row.info.shape))
        lines.append(f"{format_int(row.info.params)} params, {format_count(row.info.macs)} MACs")
        role = "attention" if row.layer.role == "attention" or getattr(row.layer, "attention", None) else "layer"
        nodes.append((f"n{index}", [printable(line) for line in lines], role))  # a param's "\n" stays in its box
    return nodes


def edges(summary: Summary) -> list[tuple[str, str]]:
    """``(source id, target id)`` for every input of every entry: the real data flow, branches and merges included."""
    ids = {"input": "n0", **{row.name: f"n{index}" for index, row in enumerate(summary.rows, start=1)}}
    return [(ids[source], ids[row.name]) for row in summary.rows for source in row.inputs]


Cluster = tuple[str, list[Any]]
"""A ``repeat:`` instance as drawn: its label and what it holds (node ids, and the clusters of inner instances)."""


def clusters(summary: Summary) -> list[Any]:
    """The node ids in order, those of each ``repeat:`` instance gathered in a cluster ``(label, members)``, nested
    as the instances are (``stage3 (hr3)`` holding ``stage3_u0_1 (up16)``): boxes around each instance's entries."""
    top: list[Any] = ["n0"]
    opened: dict[tuple[tuple[str, str], ...], list[Any]] = {(): top}
    for index, row in enumerate(summary.rows, start=1):
        for depth in range(1, len(row.scope) + 1):
            key = row.scope[:depth]
            if key not in opened:
                instance, definition = key[-1]
                opened[key] = []
                opened[key[:-1]].append((printable(f"{instance} ({definition})"), opened[key]))
        opened[row.scope].append(f"n{index}")
    return top


def _title(summary: Summary) -> str:
    return printable(
        f"{summary.name or 'network'}: {format_int(summary.params)} params, {format_count(summary.macs)} MACs per "
        f"sample, output {summary.output}"
    )


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_DOT_FILL = {"input": "#e8e8e8", "layer": "#dbe9f6", "attention": "#fde2c8"}


def to_dot(summary: Summary) -> str:
    """Graphviz DOT: top-to-bottom boxes joined as the data flows; attention (and stages with it) shaded orange."""
    lines = [
        "digraph netspec {",
        f"  label={_dot_string(_title(summary))};",
        "  labelloc=t;",
        '  fontname="Helvetica";',
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [arrowsize=0.6];',
    ]
    nodes = {node_id: (label, role) for node_id, label, role in node_lines(summary)}
    count = 0

    def emit(members: list[Any], indent: str) -> None:
        nonlocal count
        for member in members:
            if isinstance(member, str):
                label, role = nodes[member]
                text = _dot_string("\n".join(label)).replace("\n", "\\n")
                lines.append(f'{indent}{member} [label={text}, fillcolor="{_DOT_FILL[role]}"];')
                continue
            count += 1
            lines.append(f"{indent}subgraph cluster_{count} {{")
            lines.append(f'{indent}  label={_dot_string(member[0])}; style="rounded,dashed"; color="#777777";')
            emit(member[1], indent + "  ")
            lines.append(f"{indent}}}")

    emit(clusters(summary), "  ")
    for source, target in edges(summary):
        lines.append(f"  {source} -> {target};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(summary: Summary) -> str:
    """A Mermaid flowchart (``flowchart TD``); paste it in a Markdown ```` ```mermaid ```` block."""
    lines = [f"%% {_mermaid_text(_title(summary))}", "flowchart TD"]
    nodes = {node_id: (label, role) for node_id, label, role in node_lines(summary)}
    count = 0

    def emit(members: list[Any], indent: str) -> None:
        nonlocal count
        for member in members:
            if isinstance(member, str):
                label, role = nodes[member]
                text = "<br/>".join(_mermaid_text(line) for line in label)
                lines.append(f'{indent}{member}["{text}"]:::{role}')
                continue
            count += 1
            lines.append(f'{indent}subgraph c{count}["{_mermaid_text(member[0])}"]')
            emit(member[1], indent + "  ")
            lines.append(f"{indent}end")

    emit(clusters(summary), "  ")
    for source, target in edges(summary):
        lines.append(f"  {source} --> {target}")
    for role, fill in _DOT_FILL.items():
        lines.append(f"  classDef {role} fill:{fill},stroke:#555")
    return "\n".join(lines) + "\n"


def dot_program() -> str:
    """Path of Graphviz's ``dot``; :class:`GraphError` when it is not on ``PATH``."""
    program = shutil.which("dot")
    if program is None:
        raise GraphError(f"drawing SVG needs Graphviz's `dot` on PATH: {INSTALL_GRAPHVIZ}, or write .dot or .mmd")
    return program


def to_svg(summary: Summary) -> bytes:
    program = dot_program()
    try:
        result = subprocess.run([program, "-Tsvg"], input=to_dot(summary).encode(), capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GraphError(f"running Graphviz's `dot` failed: {error}") from error
    if result.returncode != 0:
        reason = (result.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[0]
        raise GraphError(f"Graphviz's `dot` failed (exit {result.returncode}): {reason}")
    return result.stdout


def render(summary: Summary, extension: str) -> bytes:
    """The drawing as bytes in the format of ``extension`` (``.svg``, ``.dot``, ``.gv``, ``.mmd``)."""
    if extension == ".svg":
        return to_svg(summary)
    if extension in (".dot", ".gv"):
        return to_dot(summary).encode()
    if extension == ".mmd":
        return to_mermaid(summary).encode()
    raise ValueError(f"unknown drawing format {extension!r}; use one of {describe_formats()}")


def write(summary: Summary, path: str | os.PathLike[str]) -> None:
    """Draw ``summary`` into ``path`` (format from the extension), atomically; :class:`GraphError` if impossible."""
    extension = output_format(path)
    if extension is None:
        raise ValueError(f"{os.fspath(path)}: unknown drawing format; use one of {describe_formats()}")
    data = render(summary, extension)  # before touching the file system: a failure leaves nothing behind

    def save(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            handle.write(data)

    write_atomic(os.fspath(path), save)
