"""The fan-out's children get logical dates as the stock operator's do: now by default, one per item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.fanout.dates import check_logical_date, item_dates
from tests.unit.conftest import START
from tests.unit.fanout_kill_helpers import ONE_QUICK, child_dag, make
from tests.unit.fanout_parent import confs

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock

pytestmark = pytest.mark.timeout(30)

US = timedelta(microseconds=1)


def sent_dates(supervisor: FakeSupervisor) -> dict[int, datetime | None]:
    return {int(msg.conf["item"]): msg.logical_date for msg in supervisor.sent_of(TriggerDagRun)}


class TestTheChildren:
    def test_by_default_now_as_stock_one_microsecond_apart(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        child_dag(supervisor, {0: (1.0, "success"), 1: (1.0, "success"), 2: (1.0, "success")})
        make(supervisor, clock, confs=confs(3), cancel_on_kill=False).run()

        assert sent_dates(supervisor) == {0: START, 1: START + US, 2: START + 2 * US}
        # What the child's {{ ds }} renders: the day of now, as under the stock operator.
        assert {date.date() for date in sent_dates(supervisor).values() if date} == {START.date()}

    def test_items_started_later_take_the_time_they_start(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        child_dag(supervisor, ONE_QUICK)
        parent = make(supervisor, clock, confs=confs(2), max_active=1, cancel_on_kill=False)
        supervisor.dags["child"].run_for = lambda conf: (2.0, "success")

        parent.run()

        dates = sent_dates(supervisor)
        assert dates[0] == START
        assert dates[1] is not None
        assert dates[1] > START + timedelta(seconds=1)
        assert len(set(dates.values())) == 2

    def test_none_opts_out(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        child_dag(supervisor, {0: (1.0, "success"), 1: (1.0, "success")})
        make(supervisor, clock, confs=confs(2), logical_date=None, cancel_on_kill=False).run()

        assert sent_dates(supervisor) == {0: None, 1: None}

    def test_a_given_date_as_text_is_each_items_base(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        child_dag(supervisor, {0: (1.0, "success"), 1: (1.0, "success")})
        make(
            supervisor, clock, confs=confs(2), logical_date="2026-01-05T00:00:00+00:00", cancel_on_kill=False
        ).run()

        base = datetime(2026, 1, 5, tzinfo=UTC)
        assert sent_dates(supervisor) == {0: base, 1: base + US}

    @pytest.mark.parametrize(
        ("value", "match"),
        [
            ("tomorrow", "cannot read 'tomorrow' as a date"),
            (3, "got int"),
        ],
    )
    def test_a_bad_date_is_refused_before_anything_is_sent(
        self, supervisor: FakeSupervisor, clock: Clock, value: object, match: str
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(2), logical_date=value, cancel_on_kill=False)

        with pytest.raises(ValueError, match=rf"Task 'trigger', parameter logical_date: .*{match}"):
            parent.run()

        assert supervisor.sent == []

    def test_a_fixed_date_another_run_holds_fails_naming_it_and_starts_nothing_more(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        # A fan-out that ran before with the same fixed date: its first child holds the first item's date.
        base = datetime(2026, 1, 5, tzinfo=UTC)
        child_dag(supervisor, {0: (1.0, "success"), 1: (1.0, "success")})
        supervisor.add_run("child", "earlier_fan_out_item_0", logical_date=base)
        parent = make(
            supervisor, clock, confs=confs(2), logical_date=base, max_active=1, cancel_on_kill=False
        )

        with pytest.raises(AirflowFailException, match="holds its logical_date") as info:
            parent.run()

        assert "Dag 'child' refused run" in str(info.value)
        # Item 0 was refused; item 1 never started, and nothing was waited on.
        assert list(sent_dates(supervisor)) == [0]
        assert [run.run_id for run in supervisor.runs_of("child")] == ["earlier_fan_out_item_0"]


class TestItemDates:
    def test_distinct_for_every_item_of_one_batch(self) -> None:
        dates = item_dates(datetime(2026, 1, 5, tzinfo=UTC), indexes=list(range(1000)))
        assert len(set(dates.values())) == 1000

    def test_now_is_read_once_per_batch(self) -> None:
        calls: list[int] = []

        def now() -> datetime:
            calls.append(1)
            return START

        from airflow.sdk.definitions._internal.types import NOTSET

        assert item_dates(NOTSET, indexes=[3, 4], now=now) == {3: START + 3 * US, 4: START + 4 * US}
        assert calls == [1]

    def test_a_naive_date_is_read_in_airflows_default_time_zone(self) -> None:
        expected = datetime(2026, 1, 5, tzinfo=UTC)
        assert check_logical_date(datetime(2026, 1, 5), task_id="t") == expected  # noqa: DTZ001
        assert check_logical_date("2026-01-05T00:00:00", task_id="t") == expected
