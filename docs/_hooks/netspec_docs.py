"""MkDocs hooks: the pages generated from netspec itself at build time, so they cannot drift.

A page asks for generated content with an HTML comment on a line of its own:

- ``<!-- netspec: kinds -->``: every registered kind (built-in), its role, paper and params, from the registry;
- ``<!-- netspec: stage-blocks -->``: every block ``stage: {block: NAME}`` takes, from the block registry;
- ``<!-- netspec: attention-catalogue -->``: :func:`netspec.catalogue.render` (attention kinds beside timm's names);
- ``<!-- netspec: graph specs/NAME.yaml -->``: the drawing of a shipped spec (``netspec graph``): an SVG when
  Graphviz's ``dot`` is on ``PATH``, else the Mermaid drawing, which Material draws in the browser.

Generated files: ``netspec.schema.json`` (the committed schema, linked from the reference), the SVG drawings under
``img/graphs/``, and ``guarantees/results.md`` (``benchmarks/RESULTS.md`` as a page).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.netspec")
ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!--\s*netspec:\s*([a-z-]+)\s*(\S*)\s*-->\s*$", re.MULTILINE)
GRAPHS = "img/graphs"


def _dot() -> bool:
    from netspec.drawing import GraphError, dot_program

    try:
        dot_program()
    except GraphError:
        return False
    return True


def _drawn_specs(config: Any) -> list[str]:
    """The specs some page asks to draw (``<!-- netspec: graph specs/x.yaml -->``)."""
    found: list[str] = []
    for page in Path(config["docs_dir"]).rglob("*.md"):
        found += [m.group(2) for m in MARKER.finditer(page.read_text(encoding="utf-8")) if m.group(1) == "graph"]
    return sorted(set(found))


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    import netspec
    from netspec.drawing import to_svg

    files.append(File.generated(config, "netspec.schema.json",
                                content=(ROOT / "netspec.schema.json").read_text(encoding="utf-8")))
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "guarantees/results.md", content=_results_page(results)))
    if _dot():
        for spec in _drawn_specs(config):
            svg = to_svg(netspec.summary(netspec.load(ROOT / spec)))
            files.append(File.generated(config, f"{GRAPHS}/{Path(spec).stem}.svg", content=svg))
    else:
        log.info("Graphviz's dot is not on PATH: the spec drawings are Mermaid, drawn in the browser")
    return files


def _results_page(text: str) -> str:
    """RESULTS.md as a page: its title says where it comes from; its headings go one level down."""
    body = re.sub(r"^# .*\n", "", text, count=1)
    return ("# Benchmark results\n\n"
            "This page is `benchmarks/RESULTS.md`, copied here when the site is built; `python benchmarks/run.py` "
            "writes it (see [Benchmark](../how-to/benchmark.md)).\n\n" + body)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    depth = page.file.src_uri.count("/")

    def replace(match: re.Match[str]) -> str:
        what, argument = match.group(1), match.group(2)
        if what == "kinds":
            return kinds_reference()
        if what == "stage-blocks":
            return stage_blocks()
        if what == "attention-catalogue":
            from netspec.catalogue import render

            return render()
        if what == "graph":
            return graph(argument, "../" * depth)
        raise ValueError(f"{page.file.src_uri}: unknown generated section {what!r}")

    return MARKER.sub(replace, markdown)


def graph(spec: str, up: str) -> str:
    import netspec
    from netspec.drawing import to_mermaid

    stem = Path(spec).stem
    if _dot():
        return f"![`{spec}`, drawn by `netspec graph`]({up}{GRAPHS}/{stem}.svg){{ loading=lazy }}\n"
    return "```mermaid\n" + to_mermaid(netspec.summary(netspec.load(ROOT / spec))) + "```\n"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _role(cls: Any) -> str:
    from netspec import Attention
    from netspec.layers import base

    if issubclass(cls, Attention):
        return "attention (keeps (N, C, H, W); also a stage's `attention:`)"
    merge = getattr(base, "Merge", None)
    if merge is not None and issubclass(cls, merge):
        return "merge (several inputs: `from: [a, b, ...]`)"
    arity = getattr(cls, "arity", (1, 1))
    if tuple(arity) != (1, 1):
        most = "any number" if arity[1] is None else arity[1]
        return f"several inputs ({arity[0]} to {most}: `from: [...]`)"
    return "layer"


def kinds_reference(kinds: dict[str, Any] | None = None) -> str:
    """One section per kind (default: every built-in kind): what it is, its paper, its params with defaults and
    descriptions."""
    from netspec.registry import builtin_kinds
    from netspec.schema import param_description

    kinds = builtin_kinds() if kinds is None else kinds
    out = ["| kind | role | what it is |", "|---|---|---|"]
    out += [f"| [`{kind}`](#{kind}) | {_role(cls).split(' (')[0]} | {_cell(cls.describe())} |"
            for kind, cls in sorted(kinds.items())]
    for kind, cls in sorted(kinds.items()):
        out += ["", f"## {kind}", "", _cell(cls.describe()), "", f"Role: {_role(cls)}."]
        if cls.paper:
            out += ["", f"Paper: {_cell(cls.paper)}."]
        fields = cls.param_fields()
        if fields:
            out += ["", "| param | default | description |", "|---|---|---|"]
            for name, info in fields.items():
                default = "required" if info.is_required() else f"`{info.get_default(call_default_factory=True)!r}`"
                out.append(f"| `{name}` | {_cell(default)} | {_cell(param_description(cls, name) or '')} |")
        else:
            out += ["", "No params: write it as a bare kind (`- " + kind + "`)."]
    return "\n".join(out) + "\n"


def stage_blocks() -> str:
    from netspec.blocks import BLOCKS, block_names
    from netspec.blocks.base import COMMON
    from netspec.schema import param_description

    out = ["| `block:` | what it is | paper | stage params it reads (besides " + ", ".join(sorted(COMMON)) + ") |",
           "|---|---|---|---|"]
    own = ["", "A block's own params (its `Params`, declared in its file), written in the stage like the others:", "",
           "| `block:` | param | default | description |", "|---|---|---|---|"]
    for name in block_names():
        block = BLOCKS[name]
        options = ", ".join(f"`{option}`" for option in block.param_names()) or "none"
        out.append(f"| `{name}` | {_cell(block.describe())} | {_cell(block.paper or '')} | {options} |")
        for param, info in (block.Params.model_fields.items() if block.Params is not None else ()):
            default = "required" if info.is_required() else f"`{info.get_default(call_default_factory=True)!r}`"
            own.append(f"| `{name}` | `{param}` | {_cell(default)} | {_cell(param_description(block.Params, param))} |")
    return "\n".join(out + (own if len(own) > 5 else [])) + "\n"
