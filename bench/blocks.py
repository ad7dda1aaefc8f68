"""
Blocks of ``results.md`` that one command writes and the others keep: the width bench's and the hour's.

``make bench`` writes the whole report; ``make bench-width`` (an hour or more) and ``make bench-hour``
(an hour) write only their blocks: their targets, at the end of the Targets section, and their
sections, before the Notes. Each rewrites its own part and keeps the others': ``make bench`` carries
the blocks of the file it replaces over into the new one, the others replace their blocks in place (or
place them, the first time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

# The report's file name in its directory (bench.report writes the rest of it).
MARKDOWN = "results.md"
# A report with nothing from make bench yet: the blocks go under this.
EMPTY_REPORT = (
    "# Benchmark: the stock `TriggerDagRunOperator` against ours\n\n"
    "`make bench` has not written its part of this report yet.\n\n## Targets\n\n## Notes\n"
)


@dataclass(frozen=True)
class Block:
    """One marked part of the report: its markers, and the heading it goes after the section of, or before."""

    name: str
    #: Placed at the end of this section (before the next ``## `` heading after it) ...
    after_section: str | None = None
    #: ... or else just before this heading; with neither found, at the end of the report.
    before_heading: str | None = None
    #: The command that writes it (``make bench`` keeps it).
    written_by: str = "make bench-width"

    @property
    def begin(self) -> str:
        """The marker line that opens the block."""
        return f"<!-- {self.name}: begin (written by {self.written_by}, kept by make bench) -->"

    @property
    def end(self) -> str:
        """The marker line that closes the block."""
        return f"<!-- {self.name}: end -->"


WIDTH_TARGETS = Block(name="bench-width targets", after_section="## Targets")
WIDTH_SECTIONS = Block(name="bench-width sections", before_heading="## Notes")
WIDTH_BLOCKS = (WIDTH_TARGETS, WIDTH_SECTIONS)
# The hour's (make bench-hour): its targets after the width bench's, its section before the Notes.
HOUR_TARGETS = Block(name="bench-hour targets", after_section="## Targets", written_by="make bench-hour")
HOUR_SECTIONS = Block(name="bench-hour sections", before_heading="## Notes", written_by="make bench-hour")
HOUR_BLOCKS = (HOUR_TARGETS, HOUR_SECTIONS)
# Every block make bench carries over when it rewrites the report.
KEPT_BLOCKS = (*WIDTH_BLOCKS, *HOUR_BLOCKS)


def write(out_dir: Path, contents: dict[Block, str]) -> Path:
    """
    Place each block's content into ``out_dir``'s report, keeping the rest of it; return its path.

    :param out_dir: where the report is (created, with ``EMPTY_REPORT``, if missing).
    :param contents: each block's new content, placed in this order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / MARKDOWN
    text = markdown.read_text() if markdown.exists() else EMPTY_REPORT
    for block, content in contents.items():
        text = place(text, block, content)
    markdown.write_text(text)
    return markdown


def extract(text: str, block: Block) -> str | None:
    """
    Return the content of ``block`` in ``text`` (without its markers), or ``None`` if it has none.

    :param text: a report.
    :param block: the block to find.
    """
    start, end = text.find(block.begin), text.find(block.end)
    if start < 0 or end < start:
        return None
    return text[start + len(block.begin) : end].strip("\n")


def place(text: str, block: Block, content: str) -> str:
    """
    Return ``text`` with ``block`` holding ``content``: where it was, or where the block belongs.

    :param text: a report.
    :param block: the block to write.
    :param content: its new content.
    """
    body = content.strip("\n")
    marked = f"{block.begin}\n{body}\n{block.end}"
    start, end = text.find(block.begin), text.find(block.end)
    if start >= 0 and end > start:
        return text[:start] + marked + text[end + len(block.end) :]
    at = _insertion_point(text, block)
    head, tail = text[:at].rstrip("\n"), text[at:].lstrip("\n")
    return f"{head}\n\n{marked}\n\n{tail}" if tail else f"{head}\n\n{marked}\n"


def carry_over(old: str, new: str) -> str:
    """
    Return ``new`` with the blocks ``old`` had, so rewriting the report keeps the width bench's and the hour's.

    :param old: the report being replaced ("" if none).
    :param new: its replacement.
    """
    for block in KEPT_BLOCKS:
        if (content := extract(old, block)) is not None:
            new = place(new, block, content)
    return new


def _insertion_point(text: str, block: Block) -> int:
    if block.after_section is not None and (section := _heading_at(text, block.after_section)) >= 0:
        following = text.find("\n## ", section + 1)
        return len(text) if following < 0 else following + 1
    if block.before_heading is not None and (heading := _heading_at(text, block.before_heading)) >= 0:
        return heading
    return len(text)


def _heading_at(text: str, heading: str) -> int:
    """Where the line ``heading`` begins in ``text`` (a whole line), or -1."""
    if text.startswith(heading + "\n"):
        return 0
    found = text.find(f"\n{heading}\n")
    return found + 1 if found >= 0 else -1
