"""Every Python block of the README and the docs parses as written (the complete Dags also run: tests/integration)."""

from __future__ import annotations

import ast

import pytest

from tests.doc_blocks import Block, python_blocks

BLOCKS = python_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_every_python_block_parses(block: Block) -> None:
    ast.parse(block.code, filename=block.name)


def test_the_blocks_are_found_and_the_complete_dags_among_them() -> None:
    # The README's example, the fan-out guide's and the accessor's, at least: a regex that found none
    # would pass the test above for nothing.
    assert len(BLOCKS) >= 8
    assert sum(block.complete for block in BLOCKS) >= 3
