"""Collect what a failed scenario needs for a diagnosis: every task log of every run it touched."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from tests.e2e.scenario import Scenario


def scenario_report(scenario: Scenario) -> str:
    """
    The timeline and the logs of every try of every task in the runs the scenario triggered or caused.

    Reporting must not hide the original failure, so an API error here becomes a line of the report.
    """
    parts = [f"scenario {scenario.name} (tag {scenario.tag})", "timeline:"]
    parts += [f"  t={t:5.1f}s {event}" for t, event in scenario.timeline]
    runs = list(scenario.triggered)
    for dag_id in sorted(scenario.watched_dags):
        try:
            runs += [(dag_id, run["dag_run_id"]) for run in scenario.runs_of(dag_id)]
        except httpx.HTTPError as err:
            parts.append(f"could not list {dag_id} runs: {err}")
    for dag_id, run_id in dict.fromkeys(runs):
        parts.append(_run_logs(scenario, dag_id, run_id))
    return "\n".join(parts)


def _run_logs(scenario: Scenario, dag_id: str, run_id: str) -> str:
    client = scenario.client
    parts = [f"\n===== {dag_id} run {run_id}"]
    try:
        run = client.dag_run(dag_id, run_id)
        parts.append(f"state {run['state']}, conf {run.get('conf')}")
        task_instances = client.task_instances(dag_id, run_id)
    except httpx.HTTPError as err:
        parts.append(f"could not read it: {err}")
        return "\n".join(parts)
    for ti in task_instances:
        map_index = ti["map_index"]
        for try_number in range(1, ti["try_number"] + 1):
            parts.append(
                f"----- {ti['task_id']}[{map_index}] try {try_number} (now {ti['state']}, "
                f"try {ti['try_number']}, pid {ti['pid']})"
            )
            # One try's log missing (no history row for it) must not hide the later tries'.
            try:
                parts.append(client.task_log(dag_id, run_id, ti["task_id"], try_number, map_index))
            except httpx.HTTPError as err:
                parts.append(f"could not read it: {err}")
    return "\n".join(parts)
