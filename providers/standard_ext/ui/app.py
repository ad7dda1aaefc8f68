"""
The FastAPI app of the "Child runs" tab: the rows it shows, and the tab's module; mounted at :data:`URL_PREFIX`.

Airflow mounts a plugin's app as it is, with no auth of its own, so the route declares it: Airflow's own
dependencies, as its public routes do. The caller must be allowed to read the parent's task instances
(``requires_access_dag(GET, TASK_INSTANCE)``, from the ``_token`` cookie the UI's browser sends, or a
bearer token); without either, a 401. Rows of a child Dag the caller may not read are withheld, and the
answer says so. The module is static code and needs no sign-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep  # noqa: TC002 (FastAPI reads it at runtime)
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.models.dag import DagModel
from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import FileResponse

from standard_ext.ui import queries
from standard_ext.ui.rows import children_of, counts, result_of, row

#: Where the app is mounted on the API server (the UI finds the module and the route under it).
URL_PREFIX = "/standard-ext"
#: The tab's ES module, served by the app.
MODULE = Path(__file__).parent / "static" / "child_runs.js"
#: Rows per page: the default, and the most one request may ask for.
PAGE, MOST = 100, 500


def create_app() -> FastAPI:
    """Build the app: ``GET /child-runs`` and ``GET /static/child_runs.js``."""
    app = FastAPI(title="Child runs", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_api_route(
        "/child-runs",
        child_runs,
        methods=["GET"],
        dependencies=[
            Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.TASK_INSTANCE))
        ],
    )
    app.add_api_route("/static/child_runs.js", module, methods=["GET"], include_in_schema=False)
    return app


def module() -> FileResponse:
    """The tab's ES module, which the UI imports."""
    return FileResponse(MODULE, media_type="text/javascript")


def child_runs(
    session: SessionDep,
    user: GetUserDep,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: Annotated[int, Query(ge=-1)] = -1,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MOST)] = PAGE,
) -> dict[str, Any]:
    """
    The child runs of one task instance: counts by state over all of them, and one page of rows.

    :param dag_id: the parent's Dag (the permission is checked on it).
    :param run_id: the parent's run.
    :param task_id: the parent task.
    :param map_index: the parent's map index (``-1``: not mapped).
    :param offset: the first item of the page.
    :param limit: how many items the page holds.
    """
    key = queries.TaskKey(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)
    parent = queries.parent_task_instance(session, key)
    if parent is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"No task instance {task_id!r} in run {run_id!r} of Dag {dag_id!r}"
        )
    operator, state, try_number = parent
    xcoms = queries.xcoms(session, key)
    children = children_of(
        operator=operator, records=queries.records(session, key), xcoms=xcoms, try_number=try_number
    )
    answer: dict[str, Any] = {
        "kind": children.kind,
        "message": children.message,
        "parent": {
            "dag_id": dag_id,
            "run_id": run_id,
            "task_id": task_id,
            "map_index": map_index,
            "state": state,
            "try_number": try_number,
            "operator": operator,
        },
        "child_dag_id": children.dag_id,
        "total": len(children.items),
        "offset": offset,
        "limit": limit,
        "withheld": False,
        "counts": {},
        "rows": [],
    }
    if children.dag_id is None:
        return answer
    if not _may_read_runs(user, children.dag_id):
        answer["withheld"] = True
        answer["message"] = f"You may not read the runs of Dag {children.dag_id!r}; its rows are withheld."
        return answer
    page = children.items[offset : offset + limit]
    runs = queries.child_runs(session, dag_id=children.dag_id, run_ids=[item.run_id for item in page])
    run_ids = [item.run_id for item in children.items]
    answer["counts"] = counts(
        children.items, queries.state_counts(session, dag_id=children.dag_id, run_ids=run_ids)
    )
    returned = xcoms.get("return_value")
    answer["rows"] = [row(item, runs.get(item.run_id), result=result_of(item, returned)) for item in page]
    return answer


def _may_read_runs(user: Any, dag_id: str) -> bool:
    """Whether the caller may read the Dag runs of ``dag_id``, as the auth manager says."""
    details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    return bool(
        get_auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.RUN, details=details, user=user
        )
    )
