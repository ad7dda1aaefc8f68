"""The fault scenarios' helpers: which component a replacement is, and the pollers a triggerer ran."""

from __future__ import annotations

from tests.e2e.components import component_of
from tests.e2e.faults import pollers_at_once


def test_pollers_at_once_counts_the_pollers_running_together_per_child_dag() -> None:
    log = "\n".join(
        [
            "triggerer | [debug] Polling child Dag runs dag_id=a",
            "triggerer | [debug] Polling child Dag runs dag_id=b",
            "triggerer | [debug] Stopped polling child Dag runs dag_id=a",
            "triggerer | [debug] Polling child Dag runs dag_id=a",
            "triggerer | [debug] Polling child Dag runs dag_id=a",
        ]
    )

    assert pollers_at_once(log, "a") == 2
    assert pollers_at_once(log, "b") == 1
    assert pollers_at_once(log, "c") == 0


def test_a_replacement_is_named_after_the_component_it_replaces() -> None:
    assert component_of("api-server") == "api-server"
    assert component_of("api-server-3") == "api-server"
    assert component_of("scheduler-2") == "scheduler"
