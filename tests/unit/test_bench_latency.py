"""What the latency case reads from Airflow's logs besides the REST API (``bench/latency.py``)."""

from __future__ import annotations

from bench.latency import had_previous_run, stale_defer_exits
from bench.model import WaitSample

# A real line of the bench's standalone.log: the scheduler failing a resumed deferrable parent on the
# stale exit of its deferring process (apache/airflow#67287).
STALE_EXIT = (
    "scheduler  | 2026-11-21T20:31:43.261098Z [error    ] Executor LocalExecutor(parallelism=32) reported that "
    "the task instance <TaskInstance: bench_parent_ours_deferrable.trigger_child "
    "manual__2026-11-21T20:31:36.048851+00:00_ecb105fa9c [queued] ti_id=01a1ffce-a87a-75eb-92ea-53ccc725e5d1> "
    "finished with state success, but the task instance's state attribute is queued. Learn more: "
    "https://airflow.apache.org/docs/apache-airflow/stable/troubleshooting.html#task-state-changed-externally "
    "[airflow.task] loc=taskinstance.py:1878"
)


def test_the_stale_exit_race_is_found_by_parent_run() -> None:
    log = "\n".join(["scheduler  | something else", STALE_EXIT])

    assert stale_defer_exits(log) == {
        ("bench_parent_ours_deferrable", "manual__2026-11-21T20:31:36.048851+00:00_ecb105fa9c")
    }
    assert stale_defer_exits("scheduler  | nothing") == set()


def wait(rep: int, start: str, end: str, *, detection: float | None = 1.0) -> WaitSample:
    return WaitSample(
        length=20,
        operator="ours",
        path="sync",
        repetition=rep,
        parent=("bench_parent_ours_sync", f"parent-{rep}"),
        state="success" if detection is not None else "failed",
        detection=detection,
        overhead=1.0,
        child=("bench_child_20s_ours_sync", f"child-{rep}"),
        child_start=start,
        child_end=end,
    )


def test_a_wait_has_a_previous_run_only_once_an_earlier_child_run_ended_well() -> None:
    first = wait(1, "2026-11-21T20:00:00Z", "2026-11-21T20:00:21Z")
    overlapping = wait(2, "2026-11-21T20:00:10Z", "2026-11-21T20:00:31Z")
    later = wait(3, "2026-11-21T20:01:00Z", "2026-11-21T20:01:21Z")
    after_a_failure = wait(4, "2026-11-21T20:02:00Z", "2026-11-21T20:02:21Z")
    samples = [first, overlapping, later]

    assert [had_previous_run(w, samples) for w in samples] == [False, False, True]
    failed_first = [wait(1, "2026-11-21T20:00:00Z", "2026-11-21T20:00:21Z", detection=None), after_a_failure]
    assert had_previous_run(after_a_failure, failed_first) is False
