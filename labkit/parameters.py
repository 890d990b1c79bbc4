"""Notebook parameters given from outside: papermill's `-p NAME VALUE` passes text, so a list arrives as a string."""

from __future__ import annotations

from typing import Any

from labkit.errors import LabkitError


def check_lists(**values: Any) -> None:
    """Stop with one line naming the fix when a list parameter holds something else (e.g. the string "[4]")."""
    for name, value in values.items():
        if not isinstance(value, list | tuple):
            example = value if isinstance(value, str) else "[...]"
            raise LabkitError(f"parameter {name} must be a list, not {value!r}: papermill's -p passes text, so give "
                              f"lists with -y, e.g. papermill ... -y \"{name}: {example}\"")
