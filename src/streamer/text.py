"""Text for messages a person reads."""

from __future__ import annotations


def one_line(text: str) -> str:
    """`text` with every run of white space, newlines included, folded into one space.

    Errors from drivers and servers often span lines; ours are one line each, so a log or a
    terminal shows one failure per line.
    """
    return " ".join(text.split())
