"""The Python blocks of the README and the docs, as a reader copies them: every file, every block."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = (PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md")))
# A fenced block marked python, indented or not (a block inside a list item is indented).
_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL
)
# A whole Dag file rather than a snippet: it defines a Dag and creates it.
_COMPLETE = re.compile(r"^@dag\(|^with DAG\(", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """One Python block: where it is, and its code as it reads once dedented."""

    path: Path
    line: int
    code: str

    @property
    def name(self) -> str:
        """``file:line``, a test id a reader can open."""
        return f"{self.path.relative_to(PROJECT_ROOT)}:{self.line}"

    @property
    def complete(self) -> bool:
        """A whole Dag file of the package: it defines and creates a Dag, and uses the package."""
        uses_package = "standard_ext" in self.code or "trigger_dag_run(" in self.code
        return bool(_COMPLETE.search(self.code)) and uses_package


def python_blocks() -> list[Block]:
    """Every Python block of the README and the docs pages, in file order."""
    found = []
    for path in DOC_FILES:
        text = path.read_text()
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(path=path, line=line, code=textwrap.dedent(match["body"])))
    return found
