"""Issue 10: the README runs as written. Every ```python block and every `$ netspec ...` line of a ```console
block is run, from a scratch folder holding copies of specs/, tests/data/ and examples/.

Conventions for README authors (an HTML comment on the line just before a block's opening fence):

- ``<!-- readme-test: skip (why) -->`` skips the block (it needs a GPU, an optional extra, your own data...);
  the reason is required and shown in the test report.
- ``<!-- readme-test: file NAME -->`` before a ```yaml (or any) block writes it to ``NAME`` in the scratch folder,
  so that later console or Python blocks can use it (``netspec build net.yaml``).

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
MARKER = re.compile(r"^<!--\s*readme-test:\s*(skip|file)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    language: str
    line: int  # 1-based line of the opening fence
    text: str
    skip: str | None = None  # the reason, when marked skip
    file: str | None = None  # where to write it, when marked file


def readme_blocks(text: str) -> list[Block]:
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
        if marker and marker.group(1) == "skip":
            skip = marker.group(2).strip("() ") or "no reason given"
        elif marker:
            file = marker.group(2)
        blocks.append(Block(opening.group(1), index + 1, "\n".join(lines[index + 1:end]) + "\n", skip, file))
        index = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [block for block in BLOCKS if block.language in ("python", "console")]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the repository (specs/, tests/data/, examples/), plus every ``file`` block."""
    folder = tmp_path_factory.mktemp("readme")
    for part in ("specs", "tests/data", "examples"):
        shutil.copytree(ROOT / part, folder / part)
    shutil.copy(ROOT / "netspec.schema.json", folder)
    for block in BLOCKS:
        if block.file:
            (folder / block.file).write_text(block.text, encoding="utf-8")
    return folder


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
    assert result.returncode == 0, f"README.md:{block.line}: the python block failed:\n{result.stderr[-3000:]}"


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
        where = f"README.md:{block.line}: `{command}`"
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


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.language}@{b.line}" for b in RUNNABLE])
def test_the_readme_block_runs_as_written(block: Block, scratch: Path) -> None:
    if block.skip:
        pytest.skip(f"README.md:{block.line}: {block.skip}")
    if block.language == "python":
        run_python(block, scratch)
    else:
        run_console(block, scratch)


def test_the_readme_has_runnable_blocks_and_the_conventions_hold() -> None:
    assert sum(block.language == "python" for block in RUNNABLE) >= 3
    assert sum(block.language == "console" for block in RUNNABLE) >= 4
    for block in BLOCKS:
        assert not (block.skip and block.skip == "no reason given"), f"README.md:{block.line}: say why it is skipped"


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
    assert (yaml_block.file, yaml_block.text) == ("a.yaml", "x: 1\n")
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
