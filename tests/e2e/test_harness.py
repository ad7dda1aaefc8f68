"""The harness itself: a second Airflow runs beside the shared one, and stopping it leaves nothing behind."""

from __future__ import annotations

import uuid
from dataclasses import astuple
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.e2e.harness import EmbeddedAirflow
from tests.e2e.polling import wait_for

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.timeout(240, method="signal")
def test_second_airflow_runs_side_by_side_and_stops_every_process(
    airflow: EmbeddedAirflow, tmp_path: Path
) -> None:
    tag = f"side-by-side-{uuid.uuid4().hex[:8]}"
    second = EmbeddedAirflow(keep_logs_on_failed_start_in=tmp_path / "second")
    try:
        second.start()
        assert set(astuple(second.ports)).isdisjoint(astuple(airflow.ports))
        second_pids = second.sessions.pids()
        assert second_pids
        assert set(second_pids).isdisjoint(airflow.sessions.pids())
        run = second.client.trigger_dag_run("example_child", {"sleep": 0, "tag": tag})
        wait_for(
            lambda: second.client.dag_run("example_child", run["dag_run_id"])["state"] == "success",
            120,
            "the second Airflow's child run to succeed",
        )
    finally:
        second.stop()

    assert [pid for pid in second_pids if psutil.pid_exists(pid)] == []
    # The shared Airflow was not disturbed and did not see the second one's run.
    assert airflow.client.health()["scheduler"]["status"] == "healthy"
    runs = airflow.client.dag_runs("example_child", conf_contains=tag)
    assert [r for r in runs if (r.get("conf") or {}).get("tag") == tag] == []
