from __future__ import annotations

from dataclasses import replace

import pytest

from standard_ext.durable.decision import Decision, SavedRun, decide, is_rerun, parse_saved_run

SAVED = SavedRun(dag_id="child", run_id="r1", max_tries=2)
ALLOWED = ["success"]


class TestDecisionTable:
    @pytest.mark.parametrize(
        ("child_state", "expected"),
        [
            pytest.param(None, Decision.TRIGGER_SAVED, id="never-created"),
            pytest.param("queued", Decision.RECONNECT, id="queued"),
            pytest.param("running", Decision.RECONNECT, id="running"),
            pytest.param("success", Decision.ALREADY_FINISHED, id="succeeded"),
            pytest.param("failed", Decision.RESUBMIT, id="failed"),
        ],
    )
    def test_waiting_retry(self, child_state: str | None, expected: Decision) -> None:
        assert (
            decide(
                saved=SAVED,
                rerun=False,
                child_state=child_state,
                wait_for_completion=True,
                allowed_states=ALLOWED,
            )
            is expected
        )

    @pytest.mark.parametrize(
        ("child_state", "expected"),
        [
            pytest.param(None, Decision.TRIGGER_SAVED, id="never-created"),
            pytest.param("running", Decision.ALREADY_FINISHED, id="running"),
            pytest.param("failed", Decision.ALREADY_FINISHED, id="failed"),
        ],
    )
    def test_fire_and_forget_retry_only_needs_the_run_to_exist(
        self, child_state: str | None, expected: Decision
    ) -> None:
        assert (
            decide(
                saved=SAVED,
                rerun=False,
                child_state=child_state,
                wait_for_completion=False,
                allowed_states=ALLOWED,
            )
            is expected
        )

    def test_nothing_saved_triggers(self) -> None:
        assert (
            decide(
                saved=None, rerun=False, child_state=None, wait_for_completion=True, allowed_states=ALLOWED
            )
            is Decision.TRIGGER
        )

    def test_rerun_triggers_whatever_the_saved_run_did(self) -> None:
        assert (
            decide(
                saved=SAVED,
                rerun=True,
                child_state="running",
                wait_for_completion=True,
                allowed_states=ALLOWED,
            )
            is Decision.TRIGGER
        )

    def test_custom_allowed_state_counts_as_finished(self) -> None:
        assert (
            decide(
                saved=SAVED,
                rerun=False,
                child_state="failed",
                wait_for_completion=True,
                allowed_states=["failed"],
            )
            is Decision.ALREADY_FINISHED
        )


class TestAutoClear:
    @pytest.mark.parametrize(
        ("rerun", "child_state", "allowed", "expected"),
        [
            pytest.param(False, "failed", ALLOWED, Decision.CLEAR_FAILED, id="retry-failed"),
            pytest.param(True, "failed", ALLOWED, Decision.CLEAR_FAILED, id="clear-failed"),
            pytest.param(True, "success", ALLOWED, Decision.TRIGGER, id="clear-succeeded"),
            pytest.param(True, "running", ALLOWED, Decision.TRIGGER, id="clear-running"),
            pytest.param(False, "running", ALLOWED, Decision.RECONNECT, id="retry-running"),
            pytest.param(False, None, ALLOWED, Decision.TRIGGER_SAVED, id="retry-never-created"),
            pytest.param(
                False, "failed", ["success", "failed"], Decision.ALREADY_FINISHED, id="failed-allowed"
            ),
        ],
    )
    def test_decision(
        self, rerun: bool, child_state: str | None, allowed: list[str], expected: Decision
    ) -> None:
        decision = decide(
            saved=SAVED,
            rerun=rerun,
            child_state=child_state,
            wait_for_completion=True,
            allowed_states=allowed,
            auto_clear=True,
        )
        assert decision is expected

    def test_clears_survive_the_round_trip(self) -> None:
        record = replace(SAVED, clears=2, try_number=3)
        assert parse_saved_run(record.to_json(), dag_id="child") == (record, None)

    @pytest.mark.parametrize("clears", [True, -1, "2", None])
    def test_a_bad_clears_count_reads_as_none(self, clears: object) -> None:
        stored = {**SAVED.to_json(), "clears": clears}
        assert parse_saved_run(stored, dag_id="child")[0] == SAVED


class TestRetryVersusRerun:
    """The clear is told from the retry by what Airflow changes on each (see ``is_rerun``)."""

    SAVED_AT_CLEAR_0 = replace(SAVED, clear_number=0)

    def test_same_max_tries_is_a_retry(self) -> None:
        assert is_rerun(SAVED, max_tries=2, clear_number=None) is False

    def test_raised_max_tries_is_a_rerun(self) -> None:
        assert is_rerun(SAVED, max_tries=4, clear_number=None) is True

    def test_nothing_cleared_in_the_run_is_a_retry(self) -> None:
        assert is_rerun(replace(self.SAVED_AT_CLEAR_0, ended="success"), max_tries=2, clear_number=0) is False

    @pytest.mark.parametrize("ended", ["success", "stopped"])
    def test_a_clear_after_a_try_no_retry_follows_is_a_rerun_even_with_the_same_max_tries(
        self, ended: str
    ) -> None:
        # retries lowered by one before the clear of a try-1 success: try_number + retries == old max_tries;
        # or a clear while the task ran: it went restarting, then up_for_retry, max_tries untouched.
        assert is_rerun(replace(self.SAVED_AT_CLEAR_0, ended=ended), max_tries=2, clear_number=1) is True

    def test_another_tasks_clear_while_this_one_crashed_is_a_retry(self) -> None:
        assert is_rerun(self.SAVED_AT_CLEAR_0, max_tries=2, clear_number=1) is False

    def test_a_try_the_server_stopped_is_followed_by_a_rerun_whatever_the_clear_number(self) -> None:
        # A clear that does not reset the run (reset_dag_runs=False) leaves clear_number alone.
        assert is_rerun(replace(self.SAVED_AT_CLEAR_0, ended="stopped"), max_tries=2, clear_number=0) is True

    def test_a_record_without_clear_number_goes_by_max_tries(self) -> None:
        assert is_rerun(replace(SAVED, ended="success"), max_tries=2, clear_number=3) is False


class TestParseSavedRun:
    @pytest.mark.parametrize(
        "saved", [SAVED, replace(SAVED, clear_number=3), replace(SAVED, clear_number=0, ended="stopped")]
    )
    def test_round_trip(self, saved: SavedRun) -> None:
        assert parse_saved_run(saved.to_json(), dag_id="child") == (saved, None)

    def test_nothing_stored_is_not_a_warning(self) -> None:
        assert parse_saved_run(None, dag_id="child") == (None, None)

    @pytest.mark.parametrize(
        ("value", "why"),
        [
            pytest.param("manual__x", "not a record", id="bare-string"),
            pytest.param({"run_id": "r1"}, "no run_id or dag_id", id="no-dag-id"),
            pytest.param({"dag_id": "child", "run_id": 3, "max_tries": 0}, "no run_id", id="run-id-not-str"),
            pytest.param({"dag_id": "child", "run_id": "r1"}, "no max_tries", id="no-max-tries"),
            pytest.param({"dag_id": "other", "run_id": "r1", "max_tries": 0}, "'other'", id="other-dag"),
        ],
    )
    def test_unusable_records_are_ignored_with_a_reason(self, value: object, why: str) -> None:
        saved, reason = parse_saved_run(value, dag_id="child")

        assert saved is None
        assert reason is not None
        assert why in reason
