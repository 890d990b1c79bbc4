"""Notebook parameters given from outside: `-p NAME=VALUE` on labkit's command line, and papermill's `-p NAME VALUE`,
which passes text, so a list arrives as a string."""

from __future__ import annotations

import ast
from typing import Any

from labkit.errors import LabkitError


def check_lists(**values: Any) -> None:
    """Stop with one line naming the fix when a list parameter holds something else (e.g. the string "[4]")."""
    for name, value in values.items():
        if not isinstance(value, list | tuple):
            example = value if isinstance(value, str) else "[...]"
            raise LabkitError(f"parameter {name} must be a list, not {value!r}: papermill's -p passes text, so give "
                              f"lists with -y, e.g. papermill ... -y \"{name}: {example}\"")


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs; VALUE is a Python literal (300, 0.5, [2, 4], None) or else a string."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise LabkitError(f"parameter {pair!r} is not NAME=VALUE (e.g. -p train_samples=600)")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params
