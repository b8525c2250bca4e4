"""What the command-line modules share: the user-facing error and its checks.

A :class:`CLIError` is printed by ``fastact``'s ``main`` as one line,
``fastact <command>: error: <message>``, with exit status 1.
"""

from __future__ import annotations

import os


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def check_writable(path: str) -> None:
    """Fail before a long run, not after it, when ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"cannot write {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise CLIError(f"cannot write {path}: it is a folder")
    if not os.access(folder, os.W_OK):
        raise CLIError(f"cannot write {path}: folder {folder} is not writable")
