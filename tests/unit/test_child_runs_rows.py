"""What the "Child runs" tab shows, from plain values: which runs a task triggered, counts, rows, results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from standard_ext.ui.rows import ChildRun, Item, children_of, counts, result_of, row, shorten

ITEMS = (Item(0, "r0", 1), Item(1, "r1", 2), Item(2, "r2", 2))


class TestChildrenOf:
    def test_a_fan_out_reads_its_record_with_the_try_of_each_item(self) -> None:
        record = {"dag_id": "child", "run_ids": ["r0", "r1"], "try_numbers": [1, 2], "max_tries": 2}
        found = children_of(
            operator="TriggerDagRunsOperator", records={"triggered_dag_runs": record}, xcoms={}, try_number=2
        )
        assert (found.kind, found.dag_id, found.items) == (
            "fan_out",
            "child",
            (Item(0, "r0", 1), Item(1, "r1", 2)),
        )

    def test_without_a_record_the_xcoms_and_the_try_now(self) -> None:
        xcoms = {"trigger_run_ids": ["a", "b"], "trigger_dag_id": "child"}
        found = children_of(operator="TriggerDagRunsOperator", records={}, xcoms=xcoms, try_number=3)
        assert found.items == (Item(0, "a", 3), Item(1, "b", 3))

    def test_the_single_operator_after_a_durable_reconnect_shows_the_saved_run(self) -> None:
        record = {"dag_id": "child", "run_id": "first", "max_tries": 2, "try_number": 1}
        # The retry's XCom names the same run; the record says which try triggered it.
        xcoms = {"trigger_run_id": "first", "trigger_dag_id": "child"}
        found = children_of(
            operator="TriggerDagRunOperator", records={"triggered_dag_run": record}, xcoms=xcoms, try_number=2
        )
        assert (found.kind, found.items) == ("single", (Item(0, "first", 1),))

    @pytest.mark.parametrize("operator", ["TriggerDagRunOperator", "TriggerDagRunsOperator"])
    def test_nothing_triggered_yet(self, operator: str) -> None:
        found = children_of(operator=operator, records={}, xcoms={}, try_number=1)
        assert found.kind == "never_triggered"
        assert "not triggered" in (found.message or "")

    def test_the_stock_operator_s_run_id_alone_points_at_its_link(self) -> None:
        found = children_of(
            operator="TriggerDagRunOperator", records={}, xcoms={"trigger_run_id": "r1"}, try_number=1
        )
        assert found.kind == "other"
        assert "'r1'" in (found.message or "")
        assert "Triggered DAG link" in (found.message or "")

    def test_another_operator(self) -> None:
        found = children_of(operator="BashOperator", records={}, xcoms={}, try_number=1)
        assert found.kind == "other"
        assert "BashOperator" in (found.message or "")


class TestRows:
    def test_counts_put_states_outside_the_list_apart(self) -> None:
        assert counts(ITEMS, {"success": 1, "up_for_retry": 1}) == {
            "success": 1,
            "failed": 0,
            "running": 0,
            "queued": 0,
            "other": 1,
            "not_started": 1,
        }

    def test_a_row_with_its_duration(self) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        run = ChildRun("r0", "success", start, start + timedelta(seconds=90), {"x": 1})
        shown = row(ITEMS[0], run)
        assert (shown["state"], shown["duration"], shown["conf_short"], shown["try_number"]) == (
            "success",
            90.0,
            '{"x":1}',
            1,
        )

    def test_an_item_not_started(self) -> None:
        assert row(ITEMS[1], None)["state"] == "not_started"

    def test_results_beyond_a_run_id_only(self) -> None:
        returned = ["r0", {"score": 7}, None]
        assert [result_of(item, returned) for item in ITEMS] == [None, {"score": 7}, None]
        assert result_of(ITEMS[0], {"score": 1}) == {"score": 1}

    def test_shorten(self) -> None:
        assert shorten({"b": 1, "a": "x" * 200}, limit=20) == '{"a":"xxxxxxxxxxxxx…'
        assert len(shorten("x" * 200, limit=20)) == 20
