"""The one exception type for mistakes a user can make (bad paths, bad parameters, bad files)."""

from __future__ import annotations

from typing import Any


class LabkitError(Exception):
    """A user-facing error: its message is one line that names what is wrong and how to fix it."""


class WrongAnswer(AssertionError):
    """A student's answer that fails a check of the student edition: its message is one line saying what is wrong
    (labkit.course.checks raises it)."""


class NotWritten(Exception):
    """A run ended without writing an output file the user named (the course's --backup-model, ...): exit code 1."""


class UnitFailed(Exception):
    """Units of a Ray run failed: one line naming each with its reason (picklable: it travels from the worker)."""


def show_in_one_line(shell: Any) -> None:
    """In a notebook, show a LabkitError or a WrongAnswer as its one line instead of a traceback (the cell still
    fails, so papermill, the runner and the autograder see the error)."""

    def one_line(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])
        return [f"{etype.__name__}: {value}"]

    shell.set_custom_exc((LabkitError, WrongAnswer), one_line)
