"""The child Dag's last success, as the execution API finds it: by logical date, as the real route does."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.execution_time.comms import GetPreviousDagRun, TriggerDagRun

from standard_ext.wait.history import last_success_seconds
from tests.unit.conftest import START
from tests.unit.fanout_kill_helpers import child_dag, make
from tests.unit.fanout_parent import CHILD, confs

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock

pytestmark = pytest.mark.timeout(30)


@pytest.mark.usefixtures("clock")
class TestTheRoutesQuery:
    def test_a_run_without_a_logical_date_never_counts(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_run(CHILD, "no_date", seconds=20, logical_date=None)
        clock.traveller.shift(60)

        assert last_success_seconds(dag_id=CHILD) is None
        (question,) = supervisor.sent_of(GetPreviousDagRun)
        assert question.state == "success"

    def test_the_latest_logical_date_wins_not_the_latest_created(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_run(CHILD, "dated_later", seconds=30, logical_date=START + timedelta(seconds=5))
        supervisor.add_run(CHILD, "created_later", seconds=10, logical_date=START)
        clock.traveller.shift(60)

        assert last_success_seconds(dag_id=CHILD) == 30

    def test_a_run_dated_in_the_future_does_not_count_yet(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_run(CHILD, "ahead", seconds=10, logical_date=START + timedelta(hours=1))
        clock.traveller.shift(60)

        assert last_success_seconds(dag_id=CHILD) is None


class TestFanOutChildrenMakeHistory:
    def test_a_second_fan_out_predicts_from_the_first(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        # With logical dates (the default, as stock), the first fan-out's children are history.
        child_dag(supervisor, {0: (20.0, "success"), 1: (20.0, "success")})
        make(supervisor, clock, confs=confs(2), cancel_on_kill=False).run()

        assert last_success_seconds(dag_id=CHILD) == 20

    def test_without_logical_dates_there_is_none(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        child_dag(supervisor, {0: (20.0, "success"), 1: (20.0, "success")})
        make(supervisor, clock, confs=confs(2), logical_date=None, cancel_on_kill=False).run()

        assert {msg.logical_date for msg in supervisor.sent_of(TriggerDagRun)} == {None}
        assert last_success_seconds(dag_id=CHILD) is None
