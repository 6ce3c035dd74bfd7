"""Sections of docs/benchmarks.md that other runs than `make bench` write and `make bench` keeps.

`make bench` rewrites the file from its template; a section between `<!-- NAME:start -->` and
`<!-- NAME:end -->` (the live page's, from `make screenshots`) survives that rewrite.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
_SECTION = re.compile(r"<!-- (\w+):start -->.*?<!-- \1:end -->", re.S)


def kept_sections(text: str) -> str:
    """Every marked section of `text`, each followed by a newline ("" when there is none)."""
    return "".join(match.group(0) + "\n" for match in _SECTION.finditer(text))


def write_section(name: str, body: str) -> None:
    """Put `body` into section `name` of docs/benchmarks.md (replaced, or added at the end)."""
    section = f"<!-- {name}:start -->\n{body.strip()}\n<!-- {name}:end -->"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)
