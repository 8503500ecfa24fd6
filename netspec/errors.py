"""Located errors: every problem in a spec carries its path and, when read from YAML, its line/column."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

PathPart = str | int
Path = tuple[PathPart, ...]


def printable(text: str) -> str:
    """``text`` with every control character, line break or lone surrogate escaped (``\\n``, ``\\x1b``), so that a
    string from a spec or a file name stays one line on a terminal and cannot send it escape sequences."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def format_path(path: Path) -> str:
    """``("layers", 3, "se", "reduction")`` -> ``layers[3].se.reduction``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            name = str(part)
            if not name or not name.isprintable():  # a key like "" or "a\nb" stays one visible token on one line
                name = repr(name)
            text += f".{name}" if text else name
    return text


@dataclass(frozen=True)
class Problem:
    """One mistake in a spec: where it is (path, file, line, column) and what is wrong."""

    path: Path
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(printable(self.file))
        if self.line is not None:
            where.append(f"{self.line}:{self.column}")
        location = ":".join(where)
        dotted = format_path(self.path)
        parts = [p for p in (location, dotted) if p]
        return ": ".join(parts + [printable(self.message)])


class SpecError(ValueError):
    """A spec is invalid; ``.problems`` lists every mistake found, each with its location."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def __reduce__(self) -> tuple[type["SpecError"], tuple[list[Problem]]]:
        return type(self), (self.problems,)  # pickling (multiprocessing) keeps the problems, not the joined text


class Invalid(Exception):
    """Raised by a shape rule when a layer cannot be inferred further (internal, becomes a Problem)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Finding:
    """A problem before it is located in a file: the path it concerns and whether it is about the key."""

    path: Path
    message: str
    on_key: bool = False


class SpecWarning(UserWarning):
    """A spec that builds but is almost certainly not what was meant (an entry whose output nobody reads).

    ``.problem`` is the located :class:`Problem`; ``str()`` is its ``file:line:col: path: message`` line.
    """

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem

    def line(self) -> str:
        """``file:line:col: warning: path: message``, as the command line prints it."""
        location = ":".join(part for part in (self.problem.file, None if self.problem.line is None else
                                              f"{self.problem.line}:{self.problem.column}") if part)
        text = str(Problem(self.problem.path, self.problem.message))
        return f"{location}: warning: {text}" if location else f"warning: {text}"
