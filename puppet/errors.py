"""The one exception type the CLI turns into a one-line error and a non-zero exit."""

from __future__ import annotations


class PuppetError(Exception):
    """A user-facing error: the message names the file or key and the problem."""
