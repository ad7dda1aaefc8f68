"""``cancel_on_kill``'s start-up check asks for what a cancel reads, and names what the user may not do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.execution_time.comms import TriggerDagRun

from tests.fake_api import DAG_RUN_LIST, SIGN_IN, TASK_INSTANCE
from tests.unit.conftest import API_CONN_ID, API_LOGIN, connect
from tests.unit.fanout_kill_helpers import child_dag, make
from tests.unit.fanout_parent import confs

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

pytestmark = pytest.mark.timeout(30)

WAITING: dict[str, Any] = {"wait_for_completion": True, "cancel_on_kill": True}
RUNS = "read the Dag runs of Dag 'child'"
TIS = "read the task instances of Dag 'parent'"


class TestNamedBeforeAnythingIsTriggered:
    @pytest.mark.parametrize(
        ("forbidden", "named"),
        [([DAG_RUN_LIST], [RUNS]), ([TASK_INSTANCE], [TIS]), ([DAG_RUN_LIST, TASK_INSTANCE], [RUNS, TIS])],
    )
    def test_a_read_the_cancel_needs(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        forbidden: list[str],
        named: list[str],
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)
        for route in forbidden:
            api.failures[route] = (403, "Forbidden")
        parent = make_parent(**WAITING)

        with pytest.raises(AirflowFailException) as info:
            parent.run()

        message = str(info.value)
        assert f"the user {API_LOGIN!r} of connection {API_CONN_ID!r} may not" in message
        assert [phrase for phrase in (RUNS, TIS) if phrase in message] == named
        assert api.routes() == SIGN_IN
        assert supervisor.sent_of(TriggerDagRun) == []
        assert parent.store.values == {}

    def test_on_a_later_try_the_retries_apply(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)
        api.failures[DAG_RUN_LIST] = (403, "Forbidden")
        parent = make_parent(**WAITING)
        parent.retry()

        with pytest.raises(AirflowException, match=RUNS) as info:
            parent.run()

        assert not isinstance(info.value, AirflowFailException)

    def test_the_fan_out_too(self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock) -> None:
        child_dag(supervisor)
        connect(supervisor, api)
        api.failures[TASK_INSTANCE] = (403, "Forbidden")
        parent = make(supervisor, clock, confs=confs(2))

        with pytest.raises(AirflowFailException, match=TIS):
            parent.run()

        assert supervisor.sent_of(TriggerDagRun) == []


class TestWhatIsNotAPermissionMatter:
    def test_a_child_dag_the_api_does_not_know_is_left_to_the_trigger(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        # The trigger names a missing Dag itself, with the stock operator's error.
        supervisor.add_dag("child", run_seconds=2)
        connect(supervisor, api)
        api.failures[DAG_RUN_LIST] = (404, "The Dag with dag_id: `child` was not found")

        make_parent(**WAITING).run()

        assert len(supervisor.sent_of(TriggerDagRun)) == 1

    def test_a_server_error_in_the_check_is_tried_again(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)
        api.failures[TASK_INSTANCE] = (503, "Service Unavailable")

        with pytest.raises(AirflowException, match="HTTP 503") as info:
            make_parent(**WAITING).run()

        assert not isinstance(info.value, AirflowFailException)
        assert len(clock.waits) > 1
