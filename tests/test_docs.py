"""Issue 24: the docs site (docs/, mkdocs.yml). `mkdocs build --strict` runs in .ci/run (it needs the `docs` extra);
these tests check, without mkdocs, what its pages are generated from: every registered kind and stage block is on the
kinds page, the attention catalogue is netspec.catalogue.render(), every public module has an API page in the nav,
and every drawing a page asks for is of a shipped spec. The pages' code blocks run in tests/test_readme.py."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS = DOCS / "_hooks" / "netspec_docs.py"


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("netspec_docs_hooks", HOOKS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _markers(text: str, hooks) -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2)) for match in hooks.MARKER.finditer(text)]


def test_the_kinds_page_is_generated_from_the_registry(hooks) -> None:
    from netspec.blocks import block_names
    from netspec.registry import builtin_kinds

    page = (DOCS / "reference" / "kinds.md").read_text()
    assert ("kinds", "") in _markers(page, hooks) and ("stage-blocks", "") in _markers(page, hooks)
    generated = hooks.kinds_reference()
    for kind, cls in builtin_kinds().items():
        assert f"\n## {kind}\n" in generated, f"kind {kind!r} has no section"
        assert f"[`{kind}`](#{kind})" in generated
        for name in cls.param_fields():
            assert f"| `{name}` |" in generated.split(f"\n## {kind}\n", 1)[1], f"{kind}.{name} is not listed"
    blocks = hooks.stage_blocks()
    for name in block_names():
        assert f"| `{name}` |" in blocks
    assert "| `convnext` | `grn` | `False` | ConvNeXt V2's Global Response Norm" in blocks  # a block's own params
    assert "| `regnet` | `group_width` | `None` | channels in each group" in blocks


def test_a_new_kind_appears_without_editing_a_page(hooks) -> None:
    from typing import Annotated

    from pydantic import Field

    import netspec
    from netspec.registry import builtin_kinds

    class DocsProbe(netspec.Attention):
        """A probe kind: attention that this test made up."""

        kind = "docs_probe"
        paper = "Nobody. A Probe. 2026"
        strength: Annotated[int, Field(ge=1)] = 3
        """how strong the probe is"""

    page = hooks.kinds_reference({**builtin_kinds(), "docs_probe": DocsProbe})
    section = page.split("\n## docs_probe\n", 1)[1].split("\n## ", 1)[0]
    assert "A probe kind: attention that this test made up." in section and "Nobody. A Probe. 2026" in section
    assert "| `strength` | `3` | how strong the probe is |" in section and "Role: attention" in section
    assert "[`docs_probe`](#docs_probe)" in page and "docs_probe" not in hooks.kinds_reference()


def test_the_attention_catalogue_page_is_the_generated_one(hooks) -> None:
    from netspec.catalogue import BEGIN, END, render

    page = (DOCS / "reference" / "attention-catalogue.md").read_text()
    assert ("attention-catalogue", "") in _markers(page, hooks)
    rendered = hooks.MARKER.sub(lambda match: render() if match.group(1) == "attention-catalogue" else "", page)
    assert BEGIN in rendered and END in rendered and render() in rendered


def test_every_public_module_has_an_api_page_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted((DOCS / "reference" / "api").glob("netspec*.md"))
    public = sorted(
        ("netspec." + path.relative_to(ROOT / "netspec").with_suffix("").as_posix().replace("/", ".")).removesuffix(
            ".__init__")
        for path in (ROOT / "netspec").rglob("*.py")
        if not path.name.startswith("_") or path.name == "__init__.py")
    internal = {"netspec.cli", "netspec.compiler", "netspec.source", "netspec.entries", "netspec.files", "netspec.ops",
                "netspec.messages", "netspec.version"}
    documented = {path.stem for path in pages}
    for page in pages:
        assert f"::: {page.stem}" in page.read_text(), f"{page.name} does not render its module"
        assert f"reference/api/{page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"
    # every top-level public module and package (not the kinds' own files, which the kinds page covers)
    wanted = {name for name in public if name.count(".") == 1 and name not in internal} - {"netspec.modules"}
    missing = sorted(name for name in wanted if name not in documented
                     and not any(page.startswith(name + ".") for page in documented))
    assert not missing, f"public modules without an API page under docs/reference/api/: {missing}"


def test_every_drawing_is_of_a_shipped_spec_and_draws(hooks) -> None:
    import netspec
    from netspec.drawing import to_mermaid

    drawn = [argument for page in DOCS.rglob("*.md") for what, argument in _markers(page.read_text(), hooks)
             if what == "graph"]
    assert {"specs/unet.yaml", "specs/danet_resnet50.yaml", "specs/yolov8n_cbam.yaml"} <= set(drawn)
    for spec in drawn:
        assert (ROOT / spec).is_file(), spec
        assert "flowchart" in to_mermaid(netspec.summary(netspec.load(ROOT / spec)))


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        if "_hooks" in page.parts:
            continue
        assert f": {page.relative_to(DOCS).as_posix()}" in nav or f"- {page.relative_to(DOCS).as_posix()}" in nav, page


def test_the_docs_extra_and_ci_build_the_site_strictly() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^docs = \[.*"mkdocs>=1\.6,<2".*"mkdocs-material.*"mkdocstrings\[python\]', pyproject, re.MULTILINE)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[docs]'" in ci and "mkdocs build --strict" in ci
    assert re.search(r"^strict: true$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)


def test_the_api_pages_print_sphinx_roles_as_code() -> None:
    """netspec's docstrings write :func:`build`; the API pages' griffe extension turns each role into code."""
    spec = importlib.util.spec_from_file_location("netspec_docs_roles", DOCS / "_hooks" / "sphinx_roles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "Like :func:`build`, see :class:`~netspec.Spec` and :data:`netspec.timm_attention.TIMM_ATTENTION`."
    assert module.plain(text) == (
        "Like `build`, see `netspec.Spec` and `netspec.timm_attention.TIMM_ATTENTION`.")
    assert "docs/_hooks/sphinx_roles.py:SphinxRoles" in (ROOT / "mkdocs.yml").read_text()
