"""Issues 10 and 24: the README and every page of the docs site (docs/**/*.md) run as written. Every ```python
block and every `$ netspec ...` line of a ```console block is run, from a scratch folder (one per document) holding
copies of specs/, tests/data/ and examples/; every ```yaml block of a document is read: a whole spec (a mapping with
`input` and `layers`) must load and check with netspec, any other YAML (a fragment, a Hydra config) must parse.
At the end of the run pytest prints how many blocks of the README and of docs/ were executed.

Conventions for authors (an HTML comment on the line just before a block's opening fence):

- ``<!-- readme-test: skip (why) -->`` skips the block (it needs a GPU, an optional extra, your own data...);
  the reason is required and shown in the test report.
- ``<!-- readme-test: file NAME -->`` before a ```yaml (or any) block writes it to ``NAME`` in the scratch folder,
  so that later console or Python blocks can use it (``netspec build net.yaml``).
- ``<!-- readme-test: file NAME invalid -->``: the same, for a spec shown for the errors it gets: it must not check.

In a console block, a line ``$ netspec ARGS`` is run as ``python -m netspec ARGS`` (a ``# comment`` after it is
ignored); the lines under it, up to the next ``$``, are its expected output: each must appear in what it printed
(stdout and stderr), in order; ``...`` stands for lines left out. A command shown without output must exit 0.
Lines starting with ``$`` that run something other than ``netspec`` are not run. ```sh blocks are not run.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import hypothesis._settings as hypothesis_settings_module

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOCUMENTS = [README, *sorted(path for path in DOCS.rglob("*.md") if "_hooks" not in path.parts)]
README_MAX_LINES = 260
MARKER = re.compile(r"^<!--\s*readme-test:\s*(skip|file)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    language: str
    line: int  # 1-based line of the opening fence
    text: str
    skip: str | None = None  # the reason, when marked skip
    file: str | None = None  # where to write it, when marked file
    invalid: bool = False  # a spec shown for its errors (``file NAME invalid``): it must fail to check
    document: str = "README.md"  # where it is written, relative to the repository

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def readme_blocks(text: str, document: str = "README.md") -> list[Block]:
    """Every fenced block of ``text``, with the marker comment (if any) on the line before its fence."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next((j for j in range(index + 1, len(lines)) if lines[j].startswith("```")), len(lines))
        marker = MARKER.match(lines[index - 1]) if index else None
        skip = file = None
        invalid = False
        if marker and marker.group(1) == "skip":
            skip = marker.group(2).strip("() ") or "no reason given"
        elif marker:
            file, _, flag = marker.group(2).partition(" ")
            invalid = flag.strip() == "invalid"
        blocks.append(Block(opening.group(1), index + 1, "\n".join(lines[index + 1:end]) + "\n", skip, file, invalid,
                            document))
        index = end + 1
    return blocks


BLOCKS = [block for document in DOCUMENTS
          for block in readme_blocks(document.read_text(encoding="utf-8"), document.relative_to(ROOT).as_posix())]
RUNNABLE = [block for block in BLOCKS if block.language in ("python", "console", "yaml")]
EXECUTED: dict[str, int] = {}  # blocks run to the end, README.md and docs/, for the line pytest prints at the end


class _ExecutedBlocks:
    """Prints, at the end of the run, how many blocks of the README and of docs/ were executed."""

    @staticmethod
    def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
        docs = sum(count for document, count in EXECUTED.items() if document.startswith("docs/"))
        pages = sum(1 for document in EXECUTED if document.startswith("docs/"))
        terminalreporter.write_sep("-", f"documentation blocks executed: {docs} in docs/ ({pages} pages), "
                                        f"{EXECUTED.get('README.md', 0)} in README.md")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """For each document, a folder laid out like the repository (specs/, tests/data/, examples/) plus every ``file``
    block of that document (made on first use)."""
    if not request.config.pluginmanager.has_plugin("netspec-executed-blocks"):
        request.config.pluginmanager.register(_ExecutedBlocks(), "netspec-executed-blocks")
    folders: dict[str, Path] = {}

    def folder_of(document: str) -> Path:
        if document not in folders:
            folder = tmp_path_factory.mktemp("doc")
            for part in ("specs", "tests/data", "examples"):
                shutil.copytree(ROOT / part, folder / part)
            shutil.copy(ROOT / "netspec.schema.json", folder)
            for block in BLOCKS:
                if block.file and block.document == document:
                    (folder / block.file).write_text(block.text, encoding="utf-8")
            folders[document] = folder
        return folders[document]

    return folder_of


PRELUDE = """\
from hypothesis import settings
settings.register_profile("readme", max_examples=5)  # hypothesis' own deadline (200 ms): the blocks bring their own
settings.load_profile("readme")
"""

EPILOGUE = """
for _name, _test in list(globals().items()):  # a block that defines tests: run them
    if _name.startswith("test_") and callable(_test):
        _test()
"""


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["COLUMNS"] = "200"
    return env


def run_python(block: Block, folder: Path) -> None:
    code = PRELUDE + block.text + EPILOGUE
    result = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True,
                            env=_environment(), timeout=600)
    assert result.returncode == 0, f"{block.where}: the python block failed:\n{result.stderr[-3000:]}"


def console_commands(block: Block) -> list[tuple[str, list[str]]]:
    """``(command line, expected output lines)`` of each ``$ `` line."""
    commands: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    return commands


def run_console(block: Block, folder: Path) -> int:
    ran = 0
    for command, expected in console_commands(block):
        words = shlex.split(command, comments=True)
        if not words or words[0] != "netspec":
            continue
        result = subprocess.run([sys.executable, "-m", "netspec", *words[1:]], cwd=folder, capture_output=True,
                                text=True, env=_environment(), timeout=600)
        ran += 1
        printed = (result.stdout + result.stderr).splitlines()
        where = f"{block.where}: `{command}`"
        assert "Traceback" not in result.stderr, f"{where} crashed:\n{result.stderr[-3000:]}"
        shown = [line.rstrip() for line in expected if line.strip() and line.strip() != "..."]
        if not shown:
            assert result.returncode == 0, f"{where} exited {result.returncode}:\n{result.stderr[-3000:]}"
        position = 0
        for line in shown:
            found = next((i for i in range(position, len(printed)) if printed[i].rstrip() == line), None)
            assert found is not None, f"{where}: expected the line\n  {line}\nin what it printed:\n" + "\n".join(printed)
            position = found + 1
    return ran


def check_yaml(block: Block) -> None:
    """A whole spec must load and check; any other YAML must parse (with netspec's own safe reader)."""
    import yaml

    import netspec

    try:
        data = yaml.safe_load(block.text)
    except yaml.YAMLError as error:
        raise AssertionError(f"{block.where}: the YAML block does not parse: {error}") from None
    if isinstance(data, dict) and "input" in data and "layers" in data:
        try:
            netspec.check(netspec.loads(block.text, name=block.where))
        except netspec.SpecError as error:
            assert block.invalid, f"{block.where}: the spec does not check:\n{error}"
        else:
            assert not block.invalid, f"{block.where}: marked invalid, but the spec checks"
    else:
        assert not block.invalid, f"{block.where}: marked invalid, but it is not a spec (a mapping with input, layers)"


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.document}:{b.language}@{b.line}" for b in RUNNABLE])
def test_the_documented_block_runs_as_written(block: Block, scratch) -> None:
    if block.skip:
        pytest.skip(f"{block.where}: {block.skip}")
    if block.language == "python":
        run_python(block, scratch(block.document))
    elif block.language == "console":
        run_console(block, scratch(block.document))
    else:
        check_yaml(block)
    EXECUTED[block.document] = EXECUTED.get(block.document, 0) + 1


def test_the_documents_have_runnable_blocks_and_the_conventions_hold() -> None:
    readme = [block for block in RUNNABLE if block.document == "README.md"]
    docs = [block for block in RUNNABLE if block.document.startswith("docs/")]
    assert sum(block.language == "python" for block in readme) >= 1
    assert sum(block.language == "console" for block in readme) >= 2
    assert sum(block.language == "python" for block in docs) >= 15
    assert sum(block.language == "console" for block in docs) >= 15
    assert sum(block.language == "yaml" for block in docs) >= 15
    for block in BLOCKS:
        assert not (block.skip and block.skip == "no reason given"), f"{block.where}: say why it is skipped"
        assert block.language, f"{block.where}: name the block's language (```python, ```yaml, ```console, ```sh)"


def test_a_python_or_yaml_block_is_written_once() -> None:
    """The README and the site share no block: a quick start that is also a page is run (and kept up) twice."""
    seen: dict[str, str] = {}
    for block in RUNNABLE:
        if block.language in ("python", "yaml") and len(block.text.splitlines()) > 3:
            assert block.text not in seen, f"{block.where} repeats {seen[block.text]}: link to it instead"
            seen[block.text] = block.where


def test_the_readme_stays_short() -> None:
    """Issue 24: the README gets a user running; everything else lives on the site (docs/)."""
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, over {README_MAX_LINES}: move sections to docs/"


def test_the_extractor_reads_markers_and_expected_output() -> None:
    text = textwrap.dedent("""\
        <!-- readme-test: file a.yaml -->
        ```yaml
        x: 1
        ```
        <!-- readme-test: skip (needs a GPU) -->
        ```python
        import cuda
        ```
        ```console
        $ netspec check a.yaml   # a comment
        a.yaml: ok
        ...
        $ ls
        ```
        """)
    yaml_block, python_block, console = readme_blocks(text)
    assert (yaml_block.file, yaml_block.text, yaml_block.invalid) == ("a.yaml", "x: 1\n", False)
    assert python_block.skip == "needs a GPU"
    assert console_commands(console) == [("netspec check a.yaml   # a comment", ["a.yaml: ok", "..."]), ("ls", [])]


# the variables hypothesis.is_in_ci() reads (hypothesis 6.1xx); the private table is used where it exists
_HYPOTHESIS_CI_VARIABLES = {"CI", "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", "TF_BUILD", "bamboo.buildKey", "BUILDKITE",
                            "CIRCLECI", "CIRRUS_CI", "CODEBUILD_BUILD_ID", "GITHUB_ACTIONS", "GITLAB_CI",
                            "HEROKU_TEST_RUN_ID", "TEAMCITY_VERSION"} | set(getattr(hypothesis_settings_module, "_CI_VARS", {}))

SLOW_PROPERTY = """\
import time
from hypothesis import given, settings
settings.register_profile("few", max_examples=3)
settings.load_profile("few")
from netspec import strategies as nst

{decorator}
@given(nst.specs(kinds=["conv"]))
def test_slow(spec):
    time.sleep(0.3)  # over hypothesis' default 200 ms deadline, as the first build of a kind can be

test_slow()
"""


@pytest.mark.parametrize("decorator", ["@nst.settings", ""], ids=["with-nst-settings", "without"])
def test_the_strategies_ship_the_settings_a_users_test_file_needs(decorator: str, tmp_path: Path) -> None:
    """The README's hypothesis examples, pasted into a user's own test file (no conftest, hypothesis' defaults),
    failed with DeadlineExceeded: ``@nst.settings`` carries what they need, and without it the same test fails."""
    # hypothesis loads its "ci" profile (no deadline) when it sees a CI variable, so a user's machine is one without
    environment = {key: value for key, value in _environment().items() if key not in _HYPOTHESIS_CI_VARIABLES}
    result = subprocess.run([sys.executable, "-c", SLOW_PROPERTY.format(decorator=decorator)], cwd=tmp_path,
                            capture_output=True, text=True, env={**environment, "PYTHONPATH": str(ROOT)},
                            timeout=300)
    if decorator:
        assert result.returncode == 0, result.stderr[-2000:]
    else:
        assert result.returncode != 0 and "DeadlineExceeded" in result.stderr, result.stderr[-2000:]


def test_the_readme_set_up_commands_are_what_ci_runs() -> None:
    """Issue 24: the README's two set-up commands stay exactly what .ci/run runs (and the Install page shows them)."""
    setup = README.read_text(encoding="utf-8").split("## Set up", 1)[1]
    commands = next(block for block in readme_blocks(setup) if block.language == "sh").text.splitlines()
    assert len(commands) == 2 and commands[1] == ". .venv/bin/activate && python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    install = (DOCS / "getting-started" / "install.md").read_text(encoding="utf-8")
    for command in commands:
        assert command in ci, f".ci/run does not run the README's `{command}`"
        assert command in install.splitlines(), f"the Install page does not show `{command}`"
