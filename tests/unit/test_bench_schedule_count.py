"""The bench's computed request counts (``bench/schedule_count.py``) against the operator's real wait."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from bench.schedule_count import LONG_CHILD_SECONDS, figure, our_requests, stock_checks

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.fakes import FakeSupervisor
    from tests.unit.conftest import Clock, Parent

WAITING: dict[str, Any] = {"wait_for_completion": True, "logical_date": None}


@pytest.mark.parametrize("seconds", [2.0, 20.0, 120.0, LONG_CHILD_SECONDS])
def test_our_computed_requests_are_what_the_synchronous_wait_sends(
    supervisor: FakeSupervisor, make_parent: Callable[..., Parent], clock: Clock, seconds: float
) -> None:
    # The steady state the bench computes for: the child Dag's last success took as long.
    supervisor.add_dag("child", run_seconds=seconds)
    supervisor.add_run("child", "earlier", seconds=seconds)
    clock.traveller.shift(seconds + 60)

    make_parent(**WAITING).run()

    kinds = supervisor.kinds_sent()
    assert len(kinds[kinds.index("TriggerDagRun") + 1 :]) == our_requests(child_seconds=seconds)


def test_stock_checks_an_hour_long_child_sixty_times_at_its_default() -> None:
    assert stock_checks(child_seconds=LONG_CHILD_SECONDS) == 60
    assert stock_checks(child_seconds=2) == 1
    assert figure(LONG_CHILD_SECONDS).stock == 60
