"""
Clearing a failed child run's failed tasks through the public REST API, and asking first whether one may.

Both are ``POST /api/v2/dags/{dag_id}/clearTaskInstances`` (``post_clear_task_instances`` in Airflow
3.3's ``task_instances`` routes). With ``dag_run_id`` and ``only_failed`` the route clears the run's task
instances in ``failed`` or ``upstream_failed`` (``DAG.clear``'s ``only_failed``), so the tasks a failure
held back are cleared with it; those it left ``skipped`` or ``success`` (a trigger rule's ``all_done``,
say) are kept. ``reset_dag_runs`` sets a finished run back to ``queued`` (and raises its
``clear_number``), as the UI's "Clear" with "Only failed" does. ``run_on_latest_version`` is left to
Airflow's own default: the Dag's ``rerun_with_latest_version``, else ``[core]
rerun_with_latest_version``, else the run's own version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from standard_ext.api.calls import authorized, expect, json_object, sign_in
from standard_ext.api.errors import ApiError
from standard_ext.api.exchange import Exchange, conversation

if TYPE_CHECKING:
    import standard_ext.api.access

#: The run id the permission check's dry run names. The route asks the auth manager before it looks the
#: run up, so a 403 is a refusal, and a 404 (no such run) or a 200 means the user may clear.
PROBE_RUN_ID = "standard-ext-permission-check"

#: What a clear needs, as each auth manager grants it (``requires_access_dag(method="PUT",
#: access_entity=TASK_INSTANCE)`` on the route).
CLEAR_PERMISSION = (
    "clear the task instances of Dag {dag_id!r} (simple auth manager: role USER or above; FAB: can edit "
    "on DAG Runs, on Task Instances and on the Dag)"
)


def _clear_url(access: standard_ext.api.access.ApiAccess, dag_id: str) -> str:
    return access.url("api", "v2", "dags", dag_id, "clearTaskInstances")


@conversation
def clear_failed_tasks(
    access: standard_ext.api.access.ApiAccess, *, dag_id: str, run_id: str
) -> Exchange[list[str]]:
    """
    Clear the run's ``failed`` and ``upstream_failed`` task instances; return them (``task`` or ``task[3]``).

    An empty list: the run had no such task instance (a run marked failed by hand, or timed out, whose
    unfinished tasks were skipped), or an earlier clear already took.

    :param dag_id: the child Dag.
    :param run_id: the child run.
    :raises ApiError: the server refused or failed; its status says which.
    """
    body = {
        "dag_run_id": run_id,
        "dry_run": False,
        "only_failed": True,
        "reset_dag_runs": True,
        "include_upstream": False,
        "include_downstream": False,
    }
    response = yield from authorized(access, "POST", _clear_url(access, dag_id), body=body)
    expect(access, response, 200, what=f"clear the failed tasks of Dag run {run_id!r} of Dag {dag_id!r}")
    return task_labels(json_object(response).get("task_instances"))


@conversation
def failed_tasks(
    access: standard_ext.api.access.ApiAccess, *, dag_id: str, run_id: str
) -> Exchange[list[str]]:
    """
    What :func:`clear_failed_tasks` would clear now, asked with a dry run: it changes nothing and Airflow leaves it out of its audit log.

    :raises ApiError: the server refused or failed.
    """
    body = {"dag_run_id": run_id, "dry_run": True, "only_failed": True}
    response = yield from authorized(access, "POST", _clear_url(access, dag_id), body=body)
    expect(access, response, 200, what=f"list the failed tasks of Dag run {run_id!r} of Dag {dag_id!r}")
    return task_labels(json_object(response).get("task_instances"))


@conversation
def missing_clear_permission(
    access: standard_ext.api.access.ApiAccess, *, dag_id: str
) -> Exchange[list[str]]:
    """
    Ask, with a dry run that changes nothing (and that Airflow leaves out of its audit log), whether the user may clear.

    :param dag_id: the child Dag.
    :return: ``[]`` when allowed, else the permission to grant (:data:`CLEAR_PERMISSION`).
    """
    body = {"dag_run_id": PROBE_RUN_ID, "dry_run": True, "only_failed": True}
    response = yield from authorized(access, "POST", _clear_url(access, dag_id), body=body)
    if response.status_code == 403:
        return [CLEAR_PERMISSION.format(dag_id=dag_id)]
    # 404: no such run (or no such Dag: the trigger says so, naming it).
    if response.status_code not in (200, 404):
        expect(access, response, 200, what=f"check that the task instances of Dag {dag_id!r} may be cleared")
    return []


@conversation
def sign_in_and_check_clear(access: standard_ext.api.access.ApiAccess, *, dag_id: str) -> Exchange[list[str]]:
    """Sign in, then :func:`missing_clear_permission`."""
    yield from sign_in(access)
    return (yield from missing_clear_permission(access, dag_id=dag_id))


def task_labels(task_instances: Any) -> list[str]:
    """
    Name the cleared task instances as the log shows them: ``task_id``, or ``task_id[map_index]``.

    :raises ApiError: the answer holds no list of task instances.
    """
    if not isinstance(task_instances, list):
        raise ApiError("clearing answered without a list of task_instances")
    labels = []
    for ti in task_instances:
        if not isinstance(ti, dict) or not isinstance(ti.get("task_id"), str):
            raise ApiError("clearing answered a task instance without a task_id")
        map_index = ti.get("map_index", -1)
        labels.append(ti["task_id"] if map_index in (-1, None) else f"{ti['task_id']}[{map_index}]")
    return sorted(labels)
