"""The fan-out's pure decisions and records, with plain values: no operator, no supervisor."""

from __future__ import annotations

import collections
import itertools
import math
from dataclasses import replace
from typing import Any

import pytest

from standard_ext.durable.decision import ENDED_SUCCESS, is_rerun
from standard_ext.fanout.checks import MAX_ITEMS, check_confs, check_constructor_values
from standard_ext.fanout.poll import split
from standard_ext.fanout.record import (
    FanOutRecord,
    check_distinct,
    confs_digest,
    new_run_ids,
    parse_record,
)
from standard_ext.fanout.state import (
    FanOut,
    ItemAction,
    ItemState,
    Rules,
    Verdict,
    failure_message,
    item_action,
    progress_fields,
    state_after,
)

P, A, S, F = ItemState.PENDING, ItemState.ACTIVE, ItemState.SUCCEEDED, ItemState.FAILED


def fan_out(*states: ItemState) -> FanOut:
    return FanOut(run_ids=tuple(f"r{i}" for i in range(len(states))), states=states)


class TestItemAction:
    @pytest.mark.parametrize(
        ("state", "action", "after"),
        [
            (None, ItemAction.TRIGGER_SAVED, P),
            ("queued", ItemAction.RECONNECT, A),
            ("running", ItemAction.RECONNECT, A),
            ("success", ItemAction.KEEP, S),
            ("failed", ItemAction.REDRIVE, P),
        ],
    )
    def test_every_server_state(self, state: str | None, action: ItemAction, after: ItemState) -> None:
        assert item_action(state) is action
        assert state_after(action) is after

    @pytest.mark.parametrize(
        ("state", "action"),
        [("failed", ItemAction.CLEAR), ("success", ItemAction.KEEP), ("running", ItemAction.RECONNECT)],
    )
    def test_with_auto_clear_a_failed_run_is_cleared(self, state: str, action: ItemAction) -> None:
        assert item_action(state, auto_clear=True) is action
        # A cleared item waits for the window, as a redriven one does.
        assert state_after(ItemAction.CLEAR) is ItemState.PENDING

    def test_an_item_waiting_for_its_clear_travels_with_the_fan_out_until_it_starts(self) -> None:
        waiting = FanOut(run_ids=("a", "b"), states=(P, S), clearing=frozenset({0}))
        assert FanOut.from_json(waiting.to_json()) == waiting
        assert waiting.with_states({0: A}).clearing == frozenset()
        assert "clearing" not in FanOut.planned(["a"]).to_json()

    @pytest.mark.parametrize("clearing", [[2], [-1], ["0"], "0"])
    def test_a_bad_clearing_list_is_refused(self, clearing: object) -> None:
        with pytest.raises(ValueError, match="Not a fan-out state"):
            FanOut.from_json({"run_ids": ["a", "b"], "states": ["pending", "success"], "clearing": clearing})


class TestToStart:
    def test_fills_the_window_with_the_first_pending_items(self) -> None:
        rules = Rules(max_active=3, tolerated_failures=0, fail_fast=False)
        assert rules.to_start(fan_out(S, A, P, P, P, P)) == [2, 3]

    def test_a_full_window_starts_nothing(self) -> None:
        rules = Rules(max_active=2, tolerated_failures=0, fail_fast=False)
        assert rules.to_start(fan_out(A, A, P)) == []

    def test_no_limit_starts_every_pending_item(self) -> None:
        rules = Rules(max_active=None, tolerated_failures=0, fail_fast=False)
        assert rules.to_start(fan_out(P, S, P, A)) == [0, 2]

    @pytest.mark.parametrize(("tolerated", "expected"), [(0, []), (1, [2])])
    def test_nothing_starts_once_failures_exceed_what_is_tolerated(
        self, tolerated: int, expected: list[int]
    ) -> None:
        rules = Rules(max_active=5, tolerated_failures=tolerated, fail_fast=False)
        assert rules.to_start(fan_out(F, A, P)) == expected

    def test_the_window_is_never_exceeded_whatever_the_states(self) -> None:
        for states in itertools.product([P, A, S, F], repeat=5):
            for window in (1, 2, 3):
                rules = Rules(max_active=window, tolerated_failures=5, fail_fast=False)
                started = len(rules.to_start(fan_out(*states)))
                assert started + states.count(A) <= max(window, states.count(A))


class TestVerdict:
    @pytest.mark.parametrize(
        ("states", "tolerated", "fail_fast", "verdict"),
        [
            ((S, S), 0, False, Verdict.SUCCEED),
            ((S, F), 1, False, Verdict.SUCCEED),
            ((S, F), 0, False, Verdict.FAIL),
            ((A, F), 0, False, Verdict.WAIT),  # wait for the started ones
            ((A, F), 0, True, Verdict.FAIL),  # fail_fast: at once
            ((P, F), 0, False, Verdict.FAIL),  # nothing may start, nothing runs
            ((A, P), 0, False, Verdict.WAIT),
            ((P,), 0, False, Verdict.WAIT),
            ((A, F), 1, True, Verdict.WAIT),
        ],
    )
    def test_verdicts(
        self, states: tuple[ItemState, ...], tolerated: int, fail_fast: bool, verdict: Verdict
    ) -> None:
        assert (
            Rules(max_active=2, tolerated_failures=tolerated, fail_fast=fail_fast).verdict(fan_out(*states))
            is verdict
        )


class TestResumeThresholds:
    @pytest.mark.parametrize(
        ("states", "window", "ends"),
        [
            ((A,) * 4 + (P,) * 10, 4, 2),  # half the window
            ((A,) * 5 + (P,) * 10, 5, 3),  # rounded up
            ((A,) * 4 + (P,), 4, 1),  # fewer left to start than half: resume when all of them can
            ((A,) * 4, 4, 4),  # nothing left to start: the end
            ((A, A, F, P), 2, 2),  # nothing may start any more: the end
            ((A,) * 3, None, 3),
            ((A,) + (P,) * 3, 1, 1),
        ],
    )
    def test_ends_to_resume_on(self, states: tuple[ItemState, ...], window: int | None, ends: int) -> None:
        assert (
            Rules(max_active=window, tolerated_failures=0, fail_fast=False).ends_to_resume_on(
                fan_out(*states)
            )
            == ends
        )

    def test_failures_to_resume_on_only_with_fail_fast(self) -> None:
        assert (
            Rules(max_active=2, tolerated_failures=2, fail_fast=False).failures_to_resume_on(fan_out(A, F))
            is None
        )
        assert (
            Rules(max_active=2, tolerated_failures=2, fail_fast=True).failures_to_resume_on(fan_out(A, F))
            == 2
        )

    @pytest.mark.parametrize(("items", "window"), [(100, 10), (40, 4), (1000, 20), (7, 3)])
    def test_resumes_cost_about_two_per_window_of_items(self, items: int, window: int) -> None:
        # Each resume sees just the runs it waited for end (the worst case: no end comes early).
        rules = Rules(max_active=window, tolerated_failures=0, fail_fast=False)
        state = FanOut.planned([f"r{i}" for i in range(items)])
        resumes = 0
        while rules.verdict(state) is Verdict.WAIT:
            state = state.with_states(dict.fromkeys(rules.to_start(state), A))
            ends = rules.ends_to_resume_on(state)
            state = state.with_ended(dict.fromkeys(state.active_run_ids()[:ends], "success"))
            resumes += 1
        assert rules.verdict(state) is Verdict.SUCCEED
        assert resumes <= math.ceil(2 * items / window)


class TestFanOut:
    def test_json_round_trip(self) -> None:
        state = fan_out(P, A, S, F)
        assert FanOut.from_json(state.to_json()) == state

    @pytest.mark.parametrize(
        "value", [{}, {"run_ids": ["a"], "states": []}, {"run_ids": ["a"], "states": ["x"]}]
    )
    def test_a_malformed_state_is_refused(self, value: dict[str, Any]) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - any malformed value
            FanOut.from_json(value)

    def test_ended_runs_succeed_or_fail_their_active_items_only(self) -> None:
        state = fan_out(A, A, A, S)
        after = state.with_ended({"r0": "success", "r1": "failed", "r2": None, "r3": "failed"})
        assert after.states == (S, F, F, S)

    def test_progress_fields(self) -> None:
        assert progress_fields(fan_out(P, A, S, F, S)) == {
            "done": 3,
            "succeeded": 2,
            "failed": 1,
            "active": 1,
            "not_started": 1,
            "items": 5,
        }

    def test_failure_message_names_the_failed_items_and_those_left_running(self) -> None:
        message = failure_message(
            fan_out=fan_out(F, A, P),
            dag_id="child",
            rules=Rules(max_active=2, tolerated_failures=0, fail_fast=True),
        )
        assert "items #0 'r0'" in message
        assert "left running: #1 'r1'" in message
        assert "1 items not started" in message


class TestRecord:
    def record(self, **kwargs: Any) -> FanOutRecord:
        values: dict[str, Any] = {
            "dag_id": "child",
            "run_ids": ("a", "b"),
            "confs_digest": confs_digest([{"x": 1}, {"x": 2}]),
            "max_tries": 2,
            "clear_number": 0,
            **kwargs,
        }
        return FanOutRecord(**values)

    def test_round_trip(self) -> None:
        record = self.record(ended=ENDED_SUCCESS)
        parsed, why = parse_record(record.to_json(), dag_id="child", digest=record.confs_digest)
        assert (parsed, why) == (record, None)

    @pytest.mark.parametrize(
        ("change", "why"),
        [
            ({"dag_id": "other"}, "for Dag 'other'"),
            ({"confs_digest": "x"}, "other confs"),
            ({"run_ids": ["a", "a"]}, "twice"),
            ({"run_ids": "a"}, "no list of run ids"),
            ({"max_tries": None}, "no max_tries"),
        ],
    )
    def test_a_stale_or_broken_record_is_ignored_with_a_reason(
        self, change: dict[str, Any], why: str
    ) -> None:
        record = self.record()
        parsed, reason = parse_record(
            {**record.to_json(), **change}, dag_id="child", digest=record.confs_digest
        )
        assert parsed is None
        assert why in (reason or "")

    def test_nothing_stored_is_no_record_and_no_reason(self) -> None:
        assert parse_record(None, dag_id="child", digest="x") == (None, None)

    def test_clears_and_try_numbers_round_trip(self) -> None:
        record = replace(self.record(), clears={"a": 2}, try_numbers=(1, 3))
        parsed, why = parse_record(record.to_json(), dag_id="child", digest=record.confs_digest)
        assert (parsed, why) == (record, None)

    @pytest.mark.parametrize(
        "change",
        [
            {"clears": {"elsewhere": 1}},
            {"clears": {"a": True}},
            {"try_numbers": [1]},
            {"try_numbers": [1, 0]},
        ],
    )
    def test_bad_clears_or_try_numbers_are_dropped_not_fatal(self, change: dict[str, Any]) -> None:
        record = self.record()
        parsed, _ = parse_record({**record.to_json(), **change}, dag_id="child", digest=record.confs_digest)
        assert parsed == record

    def test_the_digest_ignores_key_order_but_not_item_order(self) -> None:
        assert confs_digest([{"a": 1, "b": 2}]) == confs_digest([{"b": 2, "a": 1}])
        assert confs_digest([{"a": 1}, {"a": 2}]) != confs_digest([{"a": 2}, {"a": 1}])

    def test_is_rerun_reads_the_fan_out_record_as_the_single_one(self) -> None:
        record = self.record()
        assert not is_rerun(record, max_tries=2, clear_number=0)
        assert is_rerun(record, max_tries=5, clear_number=1)
        assert is_rerun(self.record(ended=ENDED_SUCCESS), max_tries=2, clear_number=1)

    def test_new_run_ids_are_distinct_from_each_other_and_from_those_taken(self) -> None:
        ids = iter(["a", "b", "a", "c", "d"])
        assert new_run_ids(count=3, taken=["b"], generate=lambda: next(ids)) == ["a", "c", "d"]

    def test_a_generator_that_repeats_itself_is_an_error(self) -> None:
        with pytest.raises(RuntimeError, match="distinct"):
            new_run_ids(count=2, taken=[], generate=lambda: "same")

    def test_check_distinct_names_the_items(self) -> None:
        with pytest.raises(ValueError, match="items #0 and #2 would share run id 'a'"):
            check_distinct(["a", "b", "a"], task_id="t")

    def test_the_label_names_the_first_run_and_how_many_more(self) -> None:
        assert self.record().run_id == "a and 1 more"


class TestInputChecks:
    @pytest.mark.parametrize(
        ("confs", "match"),
        [
            ("[{}]", "got str .*render_template_as_native_obj"),
            ({"a": 1}, "got dict"),
            ([{}, 3], r"confs\[1\]: conf must be a dict"),
            ([{"when": object()}], r"confs\[0\]: conf must be JSON-serializable"),
            ([None], r"confs\[0\] is None"),
            ([{}, {1: "a", "b": 2}], r"confs\[1\]: its keys cannot be compared"),
            ({"a", "b"}, "got set"),
            (b"[{}]", "got bytes"),
            ([{}] * (MAX_ITEMS + 1), "more than the 1000"),
        ],
    )
    def test_bad_confs_are_refused_naming_the_parameter(self, confs: object, match: str) -> None:
        with pytest.raises(ValueError, match=match) as info:
            check_confs(confs, task_id="t")
        assert str(info.value).startswith("Task 't': confs")

    def test_good_confs_come_back_as_a_list(self) -> None:
        assert check_confs(({"a": 1}, {}), task_id="t") == [{"a": 1}, {}]
        # Any sequence, as a mapped upstream task's output (LazyXComSequence) is.
        assert check_confs(collections.UserList([{"a": 1}]), task_id="t") == [{"a": 1}]
        assert check_confs([{}] * MAX_ITEMS, task_id="t") == [{}] * MAX_ITEMS

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"max_active": 0}, "max_active must be"),
            ({"max_active": True}, "max_active must be"),
            ({"tolerated_failures": -1}, "tolerated_failures must be"),
            ({"wait_for_completion": False, "max_active": 2}, "max_active needs wait_for_completion"),
            ({"wait_for_completion": False, "fail_fast": True}, "fail_fast needs wait_for_completion"),
            ({"wait_for_completion": False, "result_task_ids": ["x"]}, "result_task_ids needs"),
        ],
    )
    def test_constructor_values(self, kwargs: dict[str, Any], match: str) -> None:
        values: dict[str, Any] = {
            "max_active": None,
            "tolerated_failures": 0,
            "wait_for_completion": True,
            "fail_fast": False,
            "result_task_ids": None,
            **kwargs,
        }
        with pytest.raises(ValueError, match=match):
            check_constructor_values(task_id="t", **values)


class TestSplit:
    def split_counting(self, run_ids: list[str], counted: set[str]) -> tuple[list[str], list[str], int]:
        requests = 0

        def count(ids: list[str]) -> int:
            nonlocal requests
            requests += 1
            return sum(run_id in counted for run_id in ids)

        inside, outside = split(run_ids, counted=count(run_ids), count=count)
        return inside, outside, requests

    def test_splits_every_subset_exactly(self) -> None:
        ids = [f"r{i}" for i in range(6)]
        for size in range(7):
            for chosen in itertools.combinations(ids, size):
                inside, outside, _ = self.split_counting(ids, set(chosen))
                assert inside == [i for i in ids if i in chosen]
                assert outside == [i for i in ids if i not in chosen]

    @pytest.mark.parametrize("chosen", [set(), {f"r{i}" for i in range(100)}])
    def test_a_uniform_chunk_costs_one_request(self, chosen: set[str]) -> None:
        assert self.split_counting([f"r{i}" for i in range(100)], chosen)[2] == 1

    def test_one_odd_run_out_of_100_costs_a_few_requests_whichever_side_it_is_on(self) -> None:
        ids = [f"r{i}" for i in range(100)]
        assert self.split_counting(ids, {"r37"})[2] <= 8
        assert self.split_counting(ids, set(ids) - {"r37"})[2] <= 8
