"""The one exception type for mistakes a user can make (bad paths, bad parameters, bad files)."""


class LabkitError(Exception):
    """A user-facing error: its message is one line that names what is wrong and how to fix it."""
