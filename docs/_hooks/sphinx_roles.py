"""A griffe extension for the API pages: netspec's docstrings use Sphinx roles (``:func:`build```, ``:class:`Spec```),
which Markdown would print as they are; each becomes inline code (the name, without a leading ``~``)."""
from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:func|class|data|meth|attr|mod|exc|obj|const):`~?([^`]+)`")


def plain(docstring: str) -> str:
    """``docstring`` with every Sphinx role as inline code."""
    return ROLE.sub(r"`\1`", docstring)


try:
    import griffe
except ImportError:  # the docs extra is not installed: the tests still check `plain`
    griffe = None

if griffe is not None:

    class SphinxRoles(griffe.Extension):
        def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
            if obj.docstring is not None:
                obj.docstring.value = plain(obj.docstring.value)
