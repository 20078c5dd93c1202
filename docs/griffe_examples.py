"""griffe extension for the API reference: read a Google-style ``Example:`` section as ``Examples:``.

hardmine's docstrings head their doctests ``Example:``; griffe's Google parser knows only ``Examples:`` as the section
whose ``>>>`` lines become code blocks, and would otherwise render the doctest as prose (where ``[...]`` in an output
reads as a link). The docstrings stay as they are; only their rendering changes.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^([ \t]*)Example:[ \t]*$", re.M)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` section headers to ``Examples:`` before griffe parses a docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Called for every module, class, function and attribute griffe loads."""
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
