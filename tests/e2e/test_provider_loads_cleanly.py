"""The provider and plugin load with no error or warning: in standalone, the CLI and example-Dag discovery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import DAGS_FOLDER
from tests.e2e.ports import free_ports
from tests.e2e.settings import Ports, airflow_env

if TYPE_CHECKING:
    from tests.e2e.harness import EmbeddedAirflow

# Every name under which this project's code shows up in a log line or a traceback.
OUR_NAMES = ("airflow_durable_trigger", "airflow-durable-trigger", "standard_ext", "task_sdk_ext")
TROUBLE = ("error", "warning", "traceback", "exception")


def trouble_about_us(output: str) -> list[str]:
    """The lines that name this project together with an error, a warning or a traceback."""
    return [
        line
        for line in output.splitlines()
        if any(name in line for name in OUR_NAMES) and any(word in line.lower() for word in TROUBLE)
    ]


def test_the_check_sees_the_error_it_is_for() -> None:
    line = "[error    ] Could not load provider module airflow_durable_trigger for example DAG discovery"

    assert trouble_about_us(f"[info     ] fine\n{line}\n") == [line]


def test_standalone_start_logs_nothing_about_us(airflow: EmbeddedAirflow) -> None:
    # Up to readiness only: later lines include the tasks other scenarios fail on purpose.
    assert "scheduler" in airflow.startup_log
    assert trouble_about_us(airflow.startup_log) == []


@pytest.mark.timeout(180, method="signal")
def test_cli_and_example_dag_discovery_log_nothing_about_us(tmp_path: Path) -> None:
    # A fresh home with [core] load_examples on, so that the commands run provider example-Dag discovery.
    env = airflow_env(tmp_path, DAGS_FOLDER, Ports(*free_ports(3)), Path(sys.prefix) / "bin")
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "True"
    airflow = str(Path(sys.prefix) / "bin" / "airflow")
    outputs = []
    for command in (["db", "migrate"], ["dags", "reserialize"], ["dags", "list"]):
        done = subprocess.run(
            [airflow, *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=150
        )
        assert done.returncode == 0, f"airflow {' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout + done.stderr)

    # The discovery ran (Airflow's own example Dags are listed) and said nothing about us.
    assert "example_bash_operator" in outputs[-1]
    assert [trouble_about_us(output) for output in outputs] == [[], [], []]
