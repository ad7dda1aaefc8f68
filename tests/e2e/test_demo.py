"""`make demo`'s flow: stock and durable parents killed side by side, and the table it prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.demo import reconnect_line, run_side_by_side, table, timeline
from tests.e2e.flows import RECONNECT_EVENT

if TYPE_CHECKING:
    from tests.e2e.harness import EmbeddedAirflow


@pytest.mark.timeout(300, method="signal")
def test_demo_shows_two_children_for_stock_and_one_for_durable(airflow: EmbeddedAirflow) -> None:
    results = run_side_by_side(airflow)

    rows = {line.split()[0]: line.split() for line in table(results).splitlines()[2:]}
    # operator, child runs triggered, parent outcome, try number, time
    assert rows["stock"][1:4] == ["2", "success", "2"]
    assert rows["durable"][1:4] == ["1", "success", "2"]
    assert "SIGKILL" in timeline(results)
    assert RECONNECT_EVENT in reconnect_line(results)
