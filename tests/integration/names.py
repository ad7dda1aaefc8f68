"""
Ids shared by the test Dags and the tests.

Kept out of ``dags/``: a Dag file importing another Dag file would define that file's Dags a second time.
"""

from __future__ import annotations

CHILD = "child"
PAUSED_CHILD = "child_paused"
RESULTS_CHILD = "child_with_results"
WIDE_CHILD = "child_wide"
# The children the docs' complete examples trigger (tests/integration/test_docs_examples.py), by the ids
# the examples give them, with the tasks whose results they ask for.
DOCS_CHILDREN = {"transform": ("summary",), "score": ("score",)}
