"""``DagRunTrigger.on_kill`` with ``cancel_on_kill``, and the arguments that carry it through the database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from airflow.models.trigger import Trigger
from airflow.sdk._shared.module_loading import import_string
from airflow.serialization.decoders import smart_decode_trigger_kwargs

from standard_ext.triggers.dag_run import DagRunTrigger
from tests.fake_api import DAG_RUN_GET, DAG_RUN_PATCH, TASK_INSTANCE, TOKEN
from tests.unit.cancel_helpers import PARENT, as_deferred, killed, secrets_in
from tests.unit.conftest import API_CONN_ID, connect

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor

pytestmark = pytest.mark.timeout(30)

CHILD = ("child", "manual__1")


def make_trigger(**kwargs: Any) -> DagRunTrigger:
    values: dict[str, Any] = {
        "dag_id": CHILD[0],
        "run_id": CHILD[1],
        "poke_interval": 60,
        "fast_poll_window": 5,
        "waiting_since": 0.0,
        "cancel_on_kill": True,
        "airflow_api_conn_id": API_CONN_ID,
        **kwargs,
    }
    trigger = DagRunTrigger(**values)
    as_deferred(trigger)
    return trigger


@pytest.fixture
def connected(supervisor: FakeSupervisor, api: FakeApi) -> None:
    connect(supervisor, api)
    api.runs[CHILD] = "running"


@pytest.mark.usefixtures("connected")
class TestOnKill:
    @pytest.mark.parametrize("state", ["failed", "success", "skipped", None])
    def test_a_task_that_left_the_deferral_cancels_the_run(self, api: FakeApi, state: str | None) -> None:
        api.task_instances[PARENT] = {"state": state, "try_number": 1}

        logs = killed(make_trigger())

        assert api.runs[CHILD] == "failed"
        assert api.routes() == [TOKEN, TASK_INSTANCE, DAG_RUN_GET, DAG_RUN_PATCH]
        (cancelled,) = [e for e in logs if e["event"] == "Cancelled the child Dag run"]
        assert (cancelled["dag_id"], cancelled["run_id"]) == CHILD

    @pytest.mark.parametrize("state", ["scheduled", "queued", "running"])
    def test_a_task_resuming_in_the_same_try_keeps_its_run(self, api: FakeApi, state: str) -> None:
        # A handover whose new copy already fired: the task resumes and carries on with the run.
        api.task_instances[PARENT] = {"state": state, "try_number": 1}

        killed(make_trigger())

        assert api.runs[CHILD] == "running"
        assert DAG_RUN_PATCH not in api.routes()

    def test_a_task_still_deferred_moved_to_another_triggerer_and_keeps_its_run(self, api: FakeApi) -> None:
        api.task_instances[PARENT] = {"state": "deferred", "try_number": 1}

        logs = killed(make_trigger())

        assert api.runs[CHILD] == "running"
        assert DAG_RUN_PATCH not in api.routes()
        (kept,) = [e for e in logs if e["event"] == "Not cancelling the Dag run"]
        assert "another triggerer" in kept["reason"]

    def test_a_run_that_already_ended_is_not_patched(self, api: FakeApi) -> None:
        api.task_instances[PARENT] = {"state": "failed", "try_number": 1}
        api.runs[CHILD] = "success"

        killed(make_trigger())

        assert api.runs[CHILD] == "success"
        assert DAG_RUN_PATCH not in api.routes()

    def test_a_failed_request_is_a_warning_not_an_error(self, api: FakeApi) -> None:
        api.failures[TASK_INSTANCE] = (500, "Internal Server Error")

        logs = killed(make_trigger())

        assert api.runs[CHILD] == "running"
        (warning,) = [e for e in logs if e["log_level"] == "warning"]
        assert warning["event"] == "Not cancelling the Dag run: a request to the Airflow API failed"

    def test_a_missing_connection_is_a_warning_naming_it(self, api: FakeApi) -> None:
        logs = killed(make_trigger(airflow_api_conn_id="nowhere"))

        assert api.requests == []
        (warning,) = [e for e in logs if e["log_level"] == "warning"]
        assert warning["event"] == "Not cancelling the Dag run: no usable connection to the API server"
        assert warning["conn_id"] == "nowhere"

    def test_neither_the_token_nor_the_password_is_logged(self, api: FakeApi) -> None:
        api.task_instances[PARENT] = {"state": "failed", "try_number": 1}

        logs = killed(make_trigger())

        assert api.issued
        assert secrets_in(logs, api) == []

    def test_without_cancel_on_kill_it_does_nothing(self, api: FakeApi) -> None:
        assert killed(make_trigger(cancel_on_kill=False)) == []
        assert api.requests == []

    def test_without_a_task_instance_it_cannot_tell_and_keeps_the_run(self, api: FakeApi) -> None:
        trigger = make_trigger()
        trigger.task_instance = None  # type: ignore[assignment]

        logs = killed(trigger)

        assert api.requests == []
        assert [e["event"] for e in logs] == [
            "Not cancelling the Dag run: the trigger has no task instance to ask about"
        ]


def rebuilt(trigger: DagRunTrigger) -> DagRunTrigger:
    """The trigger as the triggerer rebuilds it from its database row."""
    row = Trigger.from_object(trigger)
    decode: Any = smart_decode_trigger_kwargs  # unannotated
    kwargs = {key: decode(value) for key, value in row.kwargs.items()}
    instance = import_string(row.classpath)(**kwargs)
    assert isinstance(instance, DagRunTrigger)
    return instance


class TestSerialization:
    def test_the_triggerer_rebuilds_cancel_on_kill(self) -> None:
        trigger = rebuilt(make_trigger())

        assert (trigger.cancel_on_kill, trigger.airflow_api_conn_id) == (True, API_CONN_ID)

    def test_a_trigger_stored_before_cancel_on_kill_existed_still_rebuilds_without_it(self) -> None:
        kwargs: dict[str, Any] = {
            "dag_id": "child",
            "run_id": "manual__1",
            "poke_interval": 60.0,
            "fast_poll_window": 5.0,
            "waiting_since": 0.0,
            "finish_on_success": False,
            "push_result": True,
            "dag_result": False,
        }

        trigger = DagRunTrigger(**kwargs)

        assert (trigger.cancel_on_kill, trigger.airflow_api_conn_id) == (False, None)
