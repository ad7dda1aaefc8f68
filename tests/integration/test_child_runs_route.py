"""
The "Child runs" route, on Airflow's own API app in-process (``create_app``), against the test database.

The parents run under ``dag.test()``; their children's states are then set as a scheduler would set them.
Users are signed in as the UI signs them in, with the ``_token`` cookie; the auth manager is the simple
one, with a viewer who may not read the child Dag (:mod:`tests.integration.scoped_auth_manager`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from tests.integration.dags.child_runs_view import ITEMS, TASK_ID, fan_out, other, single
from tests.integration.dags.resuming import missing_connection
from tests.integration.names import CHILD
from tests.integration.scoped_auth_manager import BLIND

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.conftest import RunDag

ROUTE = "/standard-ext/child-runs"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """Airflow's API app, with this package's plugin mounted, and the scoped simple auth manager."""
    from airflow.api_fastapi import app as api_app

    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER", "tests.integration.scoped_auth_manager.ScopedAuthManager"
    )
    api_app.purge_cached_app()
    with TestClient(api_app.create_app(apps="core")) as test_client:
        yield test_client
    api_app.purge_cached_app()


def sign_in(client: TestClient, username: str, role: str | None) -> None:
    """Sign ``username`` in as the UI does: the JWT in the ``_token`` cookie."""
    from airflow.api_fastapi.app import get_auth_manager

    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))
    client.cookies.set("_token", token)


def ask(client: TestClient, dag_id: str, run_id: str, **params: Any) -> Any:
    return client.get(ROUTE, params={"dag_id": dag_id, "run_id": run_id, "task_id": TASK_ID, **params})


def set_states(run_ids: list[str], states: dict[int, str]) -> None:
    with create_session() as session:
        for index, state in states.items():
            session.execute(
                update(DagRun)
                .where(DagRun.dag_id == CHILD, DagRun.run_id == run_ids[index])
                .values(state=state)
            )


@pytest.fixture
def fanned_out(run_dag: RunDag) -> tuple[str, list[str]]:
    """A fan-out of twelve: 5 succeeded, 2 failed, 2 running, 2 queued, and one planned but never created."""
    parent_run_id = run_dag(fan_out, logical_date=None).run_id
    with create_session() as session:
        run_ids = list(
            session.scalars(
                DagRun.__table__.select()
                .with_only_columns(DagRun.run_id)
                .where(DagRun.dag_id == CHILD)
                .order_by(DagRun.id)
            )
        )
    assert len(run_ids) == ITEMS
    set_states(
        run_ids,
        {
            0: "success",
            1: "success",
            2: "success",
            3: "success",
            4: "success",
            5: "failed",
            6: "failed",
            7: "running",
            8: "running",
        },
    )
    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == CHILD, DagRun.run_id == run_ids[11]))
    return parent_run_id, run_ids


class TestRows:
    def test_counts_and_rows_of_a_fan_out(
        self, client: TestClient, fanned_out: tuple[str, list[str]]
    ) -> None:
        parent_run_id, run_ids = fanned_out
        sign_in(client, "viewer", "viewer")

        answer = ask(client, fan_out.dag_id, parent_run_id).json()

        assert answer["kind"] == "fan_out"
        assert answer["child_dag_id"] == CHILD
        assert answer["counts"] == {"success": 5, "failed": 2, "running": 2, "queued": 2, "not_started": 1}
        assert answer["total"] == ITEMS
        rows = answer["rows"]
        assert [row["index"] for row in rows] == list(range(ITEMS))
        assert [row["run_id"] for row in rows] == run_ids
        assert [row["state"] for row in rows] == ["success"] * 5 + ["failed"] * 2 + ["running"] * 2 + [
            "queued"
        ] * 2 + ["not_started"]
        assert rows[3]["conf"]["item"] == 3
        assert rows[3]["conf_short"].startswith('{"item":3')
        assert {row["try_number"] for row in rows} == {1}
        assert rows[11]["conf"] is None

    def test_a_page_past_the_first(self, client: TestClient, fanned_out: tuple[str, list[str]]) -> None:
        parent_run_id, run_ids = fanned_out
        sign_in(client, "viewer", "viewer")

        answer = ask(client, fan_out.dag_id, parent_run_id, offset=10, limit=5).json()

        assert [row["run_id"] for row in answer["rows"]] == run_ids[10:]
        # The counts are over every item, whatever the page.
        assert sum(answer["counts"].values()) == ITEMS

    def test_the_single_operator_shows_its_one_child(self, client: TestClient, run_dag: RunDag) -> None:
        parent_run_id = run_dag(single, logical_date=None).run_id
        sign_in(client, "viewer", "viewer")

        answer = ask(client, single.dag_id, parent_run_id).json()

        assert answer["kind"] == "single"
        (row,) = answer["rows"]
        assert (row["state"], row["conf"]["rows"], row["try_number"]) == ("queued", 3, 1)

    def test_a_task_that_never_triggered_gets_a_line(self, client: TestClient, run_dag: RunDag) -> None:
        # It fails before its trigger: its connection is missing.
        parent_run_id = run_dag(missing_connection, logical_date=None).run_id
        sign_in(client, "viewer", "viewer")

        answer = client.get(
            ROUTE, params={"dag_id": missing_connection.dag_id, "run_id": parent_run_id, "task_id": "trigger"}
        ).json()

        assert (answer["kind"], answer["rows"]) == ("never_triggered", [])
        assert "has not triggered" in answer["message"]

    def test_a_task_of_another_operator_gets_a_line(self, client: TestClient, run_dag: RunDag) -> None:
        parent_run_id = run_dag(other, logical_date=None).run_id
        sign_in(client, "viewer", "viewer")

        answer = ask(client, other.dag_id, parent_run_id).json()

        assert answer["kind"] == "other"
        assert "TriggerDagRunsOperator" in answer["message"]
        assert answer["rows"] == []


class TestAuth:
    def test_without_a_session_cookie_401(
        self, client: TestClient, fanned_out: tuple[str, list[str]]
    ) -> None:
        assert ask(client, fan_out.dag_id, fanned_out[0]).status_code == 401

    def test_a_user_who_may_not_read_the_parent_gets_403(
        self, client: TestClient, fanned_out: tuple[str, list[str]]
    ) -> None:
        sign_in(client, "nobody", None)
        assert ask(client, fan_out.dag_id, fanned_out[0]).status_code == 403

    def test_rows_of_a_child_dag_the_user_may_not_read_are_withheld(
        self, client: TestClient, fanned_out: tuple[str, list[str]]
    ) -> None:
        sign_in(client, BLIND, "viewer")

        response = ask(client, fan_out.dag_id, fanned_out[0])

        assert response.status_code == 200
        answer = response.json()
        assert (answer["withheld"], answer["rows"], answer["counts"]) == (True, [], {})
        assert f"Dag {CHILD!r}" in answer["message"]

    def test_the_module_needs_no_sign_in(self, client: TestClient) -> None:
        response = client.get("/standard-ext/static/child_runs.js")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert "globalThis.AirflowPlugin" in response.text
